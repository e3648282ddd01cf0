import Foundation
package import Logging
package import OneoCore
package import OneoWire
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Routes processors' tool calls to the executors. The tenant of a call is the one whose
/// processor's connection it came on, never one the call names; the call must carry a ticket the
/// queue manager signed for that tenant's attempt and that tool; a tenant makes at most
/// `callsPerMinute` calls a minute, and one at a time (its connection carries one call at a
/// time). The executor sees only the call's id, tool and arguments.
///
/// Blocking sockets on threads of their own (one per processor connection, one call at a time
/// per executor): the supervisor's actor never waits on a tool.
package final class ToolRouter: Sendable {
    package let signer: ToolTicketSigner
    package let key: [UInt8]
    private let logger: Logger
    private let callsPerMinute: Int
    /// Each tool's executor connection, with a lock held for the length of one call.
    private let executors = Mutex<[String: Executor]>([:])
    /// Calls each tenant made in the current minute.
    private let windows = Mutex<[TenantID: (start: ContinuousClock.Instant, calls: Int)]>([:])

    final class Executor: Sendable {
        let socket: FrameSocket
        let lock = NSLock()
        init(socket: FrameSocket) { self.socket = socket }
    }

    package init(logger: Logger, callsPerMinute: Int = 120) {
        self.key = ToolTicketSigner.freshKey()
        self.signer = ToolTicketSigner(key: self.key)
        self.logger = logger
        self.callsPerMinute = callsPerMinute
    }

    /// A (re)started executor: its socket replaces the last one's.
    package func executorStarted(tool: String, socket: FrameSocket) {
        // An executor answers within its policy's timeout; a silent one is not waited on forever.
        socket.setReceiveTimeout(seconds: 60)
        self.executors.withLock { $0[tool] = Executor(socket: socket) }
    }

    func executorStopped(tool: String) {
        self.executors.withLock { $0[tool] = nil }
    }

    var availableTools: Set<String> { Set(self.executors.withLock { $0.keys }) }

    /// Serves one processor's connection until it closes.
    package func attach(_ descriptor: Int32, tenant: TenantID, processor: String) {
        let socket = FrameSocket(descriptor: descriptor)
        let thread = Thread { [self] in
            while true {
                let frame: ToolCallFrame
                do throws(WireError) {
                    frame = try socket.receive(ToolCallFrame.self, limit: Frame.maximumSize)
                } catch {
                    if error.code != .closed {
                        self.logger.warning("a processor's tool connection broke the protocol; closed", metadata: ["child": "\(processor)", "error": "\(error)"])
                    }
                    return
                }
                let response = self.route(frame, tenant: tenant, processor: processor)
                do {
                    try socket.send(response)
                } catch {
                    return
                }
            }
        }
        thread.name = "oneo-tools-\(tenant.rawValue)"
        thread.start()
    }

    /// Checks a call and runs it on its executor; every refusal is an answer, never a crash.
    func route(_ frame: ToolCallFrame, tenant: TenantID, processor: String) -> ToolResponse {
        let id = String(frame.id.prefix(64))
        guard self.signer.allows(frame.ticket, tenant: tenant, job: frame.job, attempt: frame.attempt, tool: frame.tool) else {
            self.logger.warning("tool call refused: no valid ticket for it", metadata: ["child": "\(processor)", "tool": "\(PlainText.bounded(frame.tool, 64))", "job.id": "\(frame.job)"])
            return ToolResponse(id: id, error: "the tool \(PlainText.bounded(frame.tool, 64)) is not allowed for this job")
        }
        let admitted = self.windows.withLock { windows -> Bool in
            let now = ContinuousClock.now
            var window = windows[tenant] ?? (now, 0)
            if now - window.start >= .seconds(60) { window = (now, 0) }
            guard window.calls < self.callsPerMinute else { return false }
            window.calls += 1
            windows[tenant] = window
            return true
        }
        guard admitted else {
            return ToolResponse(id: id, error: "this tenant made \(self.callsPerMinute) tool calls in the last minute; try again later")
        }
        guard let executor = self.executors.withLock({ $0[frame.tool] }) else {
            return ToolResponse(id: id, error: "the \(frame.tool) executor is not running; the supervisor is restarting it")
        }
        let started = ContinuousClock.now
        executor.lock.lock()
        defer { executor.lock.unlock() }
        do {
            try executor.socket.send(ToolRequest(id: id, tool: frame.tool, arguments: frame.arguments))
            var answer = try executor.socket.receive(ToolResponse.self, limit: Frame.maximumSize)
            guard answer.id == id else {
                self.logger.error("an executor answered another call; its connection is dropped", metadata: ["tool": "\(frame.tool)"])
                self.executors.withLock { if $0[frame.tool] === executor { $0[frame.tool] = nil } }
                return ToolResponse(id: id, error: "the \(frame.tool) executor failed")
            }
            answer.id = id
            self.logger.info("tool call", metadata: [
                "child": "\(processor)", "tool": "\(frame.tool)", "job.id": "\(frame.job)",
                "tool.ms": "\((ContinuousClock.now - started) / .milliseconds(1))", "tool.error": "\(answer.error != nil)",
            ])
            return answer
        } catch {
            self.logger.error("the executor connection failed", metadata: ["tool": "\(frame.tool)", "error": "\(error)"])
            self.executors.withLock { if $0[frame.tool] === executor { $0[frame.tool] = nil } }
            return ToolResponse(id: id, error: "the \(frame.tool) executor failed; try again")
        }
    }
}
