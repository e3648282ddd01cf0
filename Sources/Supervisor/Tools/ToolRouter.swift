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
/// time). The executor sees only the call's tool and arguments, under an id of ours.
///
/// Blocking sockets on threads of their own (one per processor connection, one call at a time
/// per executor): the supervisor's actor never waits on a tool. No socket here accepts passed
/// descriptors, so no peer can fill the supervisor's descriptor table.
package final class ToolRouter: Sendable {
    package let signer: ToolTicketSigner
    package let key: [UInt8]
    private let logger: Logger
    private let callsPerMinute: Int
    /// Each tool's executor connection, with a lock held for the length of one call.
    private let executors = Mutex<[String: Executor]>([:])
    /// Calls each tenant made in the current minute.
    private let windows = Mutex<[TenantID: (start: ContinuousClock.Instant, calls: Int)]>([:])
    /// Each processor's current connection: a new one shuts the one before down.
    private let connections = Mutex<[String: FrameSocket]>([:])

    final class Executor: Sendable {
        let socket: FrameSocket
        /// Killed when its connection fails, so that the supervisor starts a fresh one.
        let pid: pid_t
        let lock = NSLock()

        init(socket: FrameSocket, pid: pid_t) {
            self.socket = socket
            self.pid = pid
        }
    }

    package init(logger: Logger, callsPerMinute: Int = 120) {
        self.key = ToolTicketSigner.freshKey()
        self.signer = ToolTicketSigner(key: self.key)
        self.logger = logger
        self.callsPerMinute = callsPerMinute
    }

    /// A (re)started executor: it replaces the last one. `descriptor` is the router's own (a
    /// duplicate of the child's channel); `pid` is killed if the connection fails.
    package func executorStarted(tool: String, descriptor: Int32, pid: Int32) {
        let socket = FrameSocket(descriptor: descriptor, acceptsDescriptors: false)
        // An executor answers within its policy's timeout; a silent one is not waited on forever.
        socket.setReceiveTimeout(seconds: 60)
        socket.setSendTimeout(seconds: 10)
        self.executors.withLock { $0[tool] = Executor(socket: socket, pid: pid) }
    }

    package func executorStopped(tool: String) {
        self.executors.withLock { $0[tool] = nil }
    }

    package var availableTools: Set<String> { Set(self.executors.withLock { $0.keys }) }

    /// Serves one processor's connection until it closes or a newer one replaces it.
    package func attach(_ descriptor: Int32, tenant: TenantID, processor: String) {
        let socket = FrameSocket(descriptor: descriptor, acceptsDescriptors: false)
        socket.setSendTimeout(seconds: 10)
        if let old = self.connections.withLock({ $0.updateValue(socket, forKey: processor) }) {
            shutdown(old.descriptor, Int32(SHUT_RDWR))
        }
        let thread = Thread { [self] in
            defer { self.connections.withLock { if $0[processor] === socket { $0[processor] = nil } } }
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
                do throws(WireError) {
                    try socket.send(response)
                } catch where error.code == .oversized || error.code == .unencodable {
                    // Nothing was written: the caller hears why instead.
                    do {
                        try socket.send(ToolResponse(id: response.id, error: "the tool's result was over the size limit"))
                    } catch {
                        return
                    }
                } catch {
                    return
                }
            }
        }
        thread.name = "oneo-tools-\(tenant.rawValue)"
        thread.start()
    }

    /// Checks a call and runs it on its executor; every refusal is an answer, never a crash.
    package func route(_ frame: ToolCallFrame, tenant: TenantID, processor: String) -> ToolResponse {
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
        // Replaced while we waited (a call before ours failed on it): not ours to use.
        guard self.executors.withLock({ $0[frame.tool] === executor }) else {
            return ToolResponse(id: id, error: "the \(frame.tool) executor failed; try again")
        }
        // Our own id toward the executor: nothing a processor chose, never reused.
        let wire = String(UInt64.random(in: 0 ... .max), radix: 16) + "-" + String(UInt64.random(in: 0 ... .max), radix: 16)
        do throws(WireError) {
            do throws(WireError) {
                try executor.socket.send(ToolRequest(id: wire, tool: frame.tool, arguments: frame.arguments))
            } catch where error.code == .oversized || error.code == .unencodable {
                // Nothing was written: the call is refused, the executor is fine.
                return ToolResponse(id: id, error: "the call's arguments are over the size limit")
            }
            var answer = try executor.socket.receive(ToolResponse.self, limit: Frame.maximumSize)
            guard answer.id == wire else {
                self.abandon(executor, tool: frame.tool, reason: "it answered another call")
                return ToolResponse(id: id, error: "the \(frame.tool) executor failed; try again")
            }
            answer.id = id
            self.logger.info("tool call", metadata: [
                "child": "\(processor)", "tool": "\(frame.tool)", "job.id": "\(frame.job)",
                "tool.ms": "\((ContinuousClock.now - started) / .milliseconds(1))", "tool.error": "\(answer.error != nil)",
            ])
            return answer
        } catch {
            self.abandon(executor, tool: frame.tool, reason: "\(error)")
            return ToolResponse(id: id, error: "the \(frame.tool) executor failed; try again")
        }
    }

    /// An executor whose connection can no longer be trusted (a failed write or read, a
    /// timeout, a wrong answer) is dropped and killed: the supervisor starts a fresh one, and no
    /// late answer can reach a later call.
    private func abandon(_ executor: Executor, tool: String, reason: String) {
        self.logger.error("the executor connection failed; killing it for a restart", metadata: ["tool": "\(tool)", "error": "\(reason)"])
        self.executors.withLock { if $0[tool] === executor { $0[tool] = nil } }
        kill(executor.pid, SIGKILL)
    }
}
