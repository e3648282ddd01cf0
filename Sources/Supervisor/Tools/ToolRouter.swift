import Foundation
package import Logging
package import OneoCore
package import OneoWire
import CSandbox
import CProcess
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
    /// Each tool's executors: those idle, and the calls waiting for one, first come first served
    /// (each tenant has at most one call waiting: its connection carries one at a time, so
    /// first come is also fair between tenants).
    private let pools = Mutex<[String: Pool]>([:])
    /// How long a call waits for an idle executor before it is answered "busy".
    private let longestWait: Duration

    struct Pool {
        var members: [Int: Executor] = [:]
        var idle: [Executor] = []
        var waiting: [Waiter] = []
    }

    final class Waiter: Sendable {
        let ready = DispatchSemaphore(value: 0)
        let handed = Mutex<Executor?>(nil)
    }
    /// Calls each tenant made in the current minute.
    private let windows = Mutex<[TenantID: (start: ContinuousClock.Instant, calls: Int)]>([:])
    /// Each processor's current connection: a new one shuts the one before down.
    private let connections = Mutex<[String: FrameSocket]>([:])
    /// Tenants with a call running or waiting: one at a time per tenant, whatever its
    /// connections (a processor that reconnects cannot stack calls ahead of other tenants).
    private let busyTenants = Mutex<Set<TenantID>>([])
    /// Where each tool's executor may be connected (its policy's `egress` lines), resolved here.
    private let egress = Mutex<[String: Set<String>]>([:])
    /// The operator's search backend (`serve --search-url`): host and port.
    private let searchBackend: (host: String, port: Int)?
    /// Each tenant's provider as its processor was last started with: where, and the key, which
    /// the image executor gets for one request at a time.
    private let providers = Mutex<[TenantID: ToolCredential]>([:])
    /// File search: the executor role's password, and how a grant for one call is made.
    private let fileAccess = Mutex<(password: String, grant: @Sendable (TenantID) -> String?, revoke: @Sendable (String) -> Void)?>(nil)
    /// Each tool's longest call (its policy's timeout, plus `ToolCallLimits.routerMargin`): a call
    /// that takes longer ends in an error and its executor is killed, however slowly it writes.
    private let deadlines = Mutex<[String: Duration]>([:])
    /// Whether a tenant's provider may be on this machine or a private network (the operator's
    /// `--allow-private-providers`: local model servers, the simulator). Off, a provider name
    /// that resolves there is refused, so a tenant cannot point the image jail inward.
    private let privateProviders: Bool

    final class Executor: Sendable {
        let socket: FrameSocket
        /// Killed through it when its connection fails, so that the supervisor starts a fresh
        /// one: a pidfd names this process and never one that reuses its pid.
        let pidfd: Int32
        let slot: Int

        init(socket: FrameSocket, pidfd: Int32, slot: Int) {
            self.socket = socket
            self.pidfd = pidfd
            self.slot = slot
        }

        deinit {
            if self.pidfd >= 0 { close(self.pidfd) }
        }
    }

    package init(logger: Logger, callsPerMinute: Int = 120, longestWait: Duration = .seconds(30), searchBackend: String? = nil, privateProviders: Bool = false) {
        self.searchBackend = searchBackend.flatMap(Self.hostAndPort)
        self.privateProviders = privateProviders
        self.key = ToolTicketSigner.freshKey()
        self.signer = ToolTicketSigner(key: self.key)
        self.logger = logger
        self.callsPerMinute = callsPerMinute
        self.longestWait = longestWait
    }

    /// A (re)started executor in its slot of the tool's pool: it replaces the slot's last one.
    /// `descriptor` is the router's own (a duplicate of the child's channel); `pid` is killed if
    /// the connection fails.
    package func executorStarted(tool: String, slot: Int = 1, descriptor: Int32, pid: Int32) {
        let socket = FrameSocket(descriptor: descriptor, acceptsDescriptors: false)
        // An executor answers within its policy's timeout; a silent one is not waited on forever.
        socket.setReceiveTimeout(seconds: 60)
        socket.setSendTimeout(seconds: 10)
        let executor = Executor(socket: socket, pidfd: oneo_pidfd_open(pid), slot: slot)
        self.pools.withLock { pools in
            var pool = pools[tool] ?? Pool()
            if let old = pool.members.updateValue(executor, forKey: slot) { pool.idle.removeAll { $0 === old } }
            pools[tool] = pool
        }
        self.release(executor, tool: tool)
    }

    /// What a tool's policy says the router enforces: the egress places it allows
    /// (`search-backend`, `tenant-provider`) and how long one call may take.
    package func configure(_ tool: String, egress places: [String], timeout: Duration) {
        self.egress.withLock { $0[tool] = Set(places) }
        self.deadlines.withLock { $0[tool] = timeout }
    }

    /// How file_search calls get their database access.
    package func setFileAccess(password: String, grant: @escaping @Sendable (TenantID) -> String?, revoke: @escaping @Sendable (String) -> Void) {
        self.fileAccess.withLock { $0 = (password, grant, revoke) }
    }

    /// The tenant's provider, as its processor was started with; nil forgets it.
    package func setProvider(_ tenant: TenantID, _ credential: ToolCredential?) {
        self.providers.withLock { $0[tenant] = credential }
    }

    /// Host (lowercased) and port of an http(s) URL.
    static func hostAndPort(_ url: String) -> (host: String, port: Int)? {
        guard let components = URLComponents(string: url), let scheme = components.scheme?.lowercased(), ["http", "https"].contains(scheme),
              let host = components.host?.lowercased(), !host.isEmpty
        else { return nil }
        let port = components.port ?? (scheme == "https" ? 443 : 80)
        return (1...65535).contains(port) ? (host, port) : nil
    }

    package func executorStopped(tool: String, slot: Int = 1) {
        self.pools.withLock { pools in
            guard let old = pools[tool]?.members.removeValue(forKey: slot) else { return }
            pools[tool]?.idle.removeAll { $0 === old }
        }
    }

    /// Whether a processor has a live tool connection.
    package func isConnected(_ processor: String) -> Bool {
        self.connections.withLock { $0[processor] != nil }
    }

    package var availableTools: Set<String> { Set(self.pools.withLock { $0.filter { !$0.value.members.isEmpty }.keys }) }

    /// An idle executor of the tool, waiting (first come, first served) up to `longestWait`.
    private func acquire(_ tool: String) -> Executor? {
        let waiter = Waiter()
        let immediate = self.pools.withLock { pools -> Executor?? in
            guard var pool = pools[tool], !pool.members.isEmpty else { return .some(nil) }
            if pool.waiting.isEmpty, !pool.idle.isEmpty {
                let executor = pool.idle.removeFirst()
                pools[tool] = pool
                return .some(executor)
            }
            pool.waiting.append(waiter)
            pools[tool] = pool
            return nil
        }
        if let immediate { return immediate }
        let seconds = Double(self.longestWait.components.seconds) + Double(self.longestWait.components.attoseconds) / 1e18
        _ = waiter.ready.wait(timeout: .now() + seconds)
        // Handed one, or gave up: either way no longer waiting.
        return self.pools.withLock { pools in
            pools[tool]?.waiting.removeAll { $0 === waiter }
            return waiter.handed.withLock { handed in
                defer { handed = nil }
                return handed
            }
        }
    }

    /// An executor back in its pool: to the first call waiting, else idle. One that was
    /// replaced or dropped meanwhile goes nowhere.
    private func release(_ executor: Executor, tool: String) {
        self.pools.withLock { pools in
            guard var pool = pools[tool], pool.members[executor.slot] === executor else { return }
            if !pool.waiting.isEmpty {
                let waiter = pool.waiting.removeFirst()
                waiter.handed.withLock { $0 = executor }
                waiter.ready.signal()
            } else {
                pool.idle.append(executor)
            }
            pools[tool] = pool
        }
    }

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
        guard self.busyTenants.withLock({ $0.insert(tenant).inserted }) else {
            return ToolResponse(id: id, error: "this tenant already has a tool call running; one at a time")
        }
        defer { _ = self.busyTenants.withLock { $0.remove(tenant) } }
        guard self.pools.withLock({ !($0[frame.tool]?.members.isEmpty ?? true) }) else {
            return ToolResponse(id: id, error: "the \(frame.tool) executor is not running; the supervisor is restarting it")
        }
        let started = ContinuousClock.now
        guard let executor = self.acquire(frame.tool) else {
            return ToolResponse(id: id, error: "every \(frame.tool) executor stayed busy for \(self.longestWait); try again later")
        }
        var healthy = true
        defer { if healthy { self.release(executor, tool: frame.tool) } }
        // Our own id toward the executor: nothing a processor chose, never reused.
        let wire = String(UInt64.random(in: 0 ... .max), radix: 16) + "-" + String(UInt64.random(in: 0 ... .max), radix: 16)
        // The image executor gets this tenant's provider for this one request; no other does.
        var credential: ToolCredential?
        if frame.tool == "image_generation" {
            guard let provider = self.providers.withLock({ $0[tenant] }) else {
                return ToolResponse(id: id, error: "this tenant has no provider key for images")
            }
            credential = provider
        }
        // File search gets a grant for this tenant, for this call, and nothing else.
        var files: FileAccess?
        if frame.tool == "file_search" {
            guard let access = self.fileAccess.withLock({ $0 }), let grant = access.grant(tenant) else {
                return ToolResponse(id: id, error: "file search is not available right now")
            }
            files = FileAccess(grant: grant, password: access.password)
        }
        // A grant serves its one call: gone when the call is, however it ends.
        defer { if let files { self.fileAccess.withLock { $0 }?.revoke(files.grant) } }
        do throws(WireError) {
            do throws(WireError) {
                try executor.socket.send(ToolRequest(id: wire, tool: frame.tool, arguments: frame.arguments, credential: credential, files: files))
            } catch where error.code == .oversized || error.code == .unencodable {
                // Nothing was written: the call is refused, the executor is fine.
                return ToolResponse(id: id, error: "the call's arguments are over the size limit")
            }
            var connections = 0
            var answer: ToolResponse
            // The policy's timeout and a margin for the jail's start and the answer's way back.
            let deadline = ContinuousClock.now + (self.deadlines.withLock { $0[frame.tool] } ?? .seconds(30)) + ToolCallLimits.routerMargin
            while true {
                // However slowly the executor writes, the call ends at its deadline.
                let message = try executor.socket.receive(ExecutorFrame.self, limit: Frame.maximumSize, before: deadline)
                guard let target = message.egress else {
                    answer = message.response
                    break
                }
                guard message.id == wire else { throw WireError(.malformed, detail: "an egress request for another call") }
                connections += 1
                // Past the allowance the executor is not asking, it is stalling: it is killed.
                guard connections <= ToolCallLimits.egressRequests else { throw WireError(.malformed, detail: "more egress requests than a call may make") }
                try self.grantEgress(target, tool: frame.tool, tenant: tenant, credential: credential, count: connections, on: executor.socket, call: wire, deadline: deadline)
            }
            guard answer.id == wire else {
                healthy = false
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
            healthy = false
            self.abandon(executor, tool: frame.tool, reason: "\(error)")
            return ToolResponse(id: id, error: "the \(frame.tool) executor failed; try again")
        }
    }

    /// Answers an executor's egress request: a connection to the host if its policy's egress
    /// allows it for this call (the search backend; this tenant's provider), made here and handed
    /// over; else an error the executor reports as the tool's. Hosts are compared by name and
    /// port, so the executor can name only what the operator or the tenant configured.
    private func grantEgress(
        _ target: EgressRequest.Target, tool: String, tenant: TenantID, credential: ToolCredential?, count: Int, on socket: FrameSocket, call: String,
        deadline: ContinuousClock.Instant
    ) throws(WireError) {
        let places = self.egress.withLock { $0[tool] ?? [] }
        // What the executor sends is checked before it is used: a port outside 1...65535 is
        // refused like any place not allowed.
        guard (1...65535).contains(target.port) else {
            try socket.send(EgressGrant(id: call, error: "no such port"))
            return
        }
        let host = PlainText.bounded(target.host, bytes: 255).lowercased()
        var allowed = false
        // The operator named the search backend, so it may be anywhere; a tenant's provider is
        // the tenant's choice, so it may be private only where the operator said so.
        var mayBePrivate = false
        if places.contains("search-backend"), let backend = self.searchBackend, backend.host == host, backend.port == target.port {
            allowed = true
            mayBePrivate = true
        }
        if !allowed, places.contains("tenant-provider"), let provider = credential.flatMap({ Self.hostAndPort($0.baseURL) }), provider.host == host, provider.port == target.port {
            allowed = true
            mayBePrivate = self.privateProviders
        }
        guard allowed else {
            self.logger.warning("egress refused: not a place this tool may reach", metadata: ["tool": "\(tool)", "tenant": "\(tenant.rawValue)", "egress.host": "\(host)", "egress.port": "\(target.port)"])
            try socket.send(EgressGrant(id: call, error: "\(host):\(target.port) is not a place \(tool) may reach"))
            return
        }
        guard count <= ToolCallLimits.connectionsPerCall else {
            try socket.send(EgressGrant(id: call, error: "one call may open at most \(ToolCallLimits.connectionsPerCall) connections"))
            return
        }
        // A connection never takes the call past its deadline: at most `connectTime`, and never
        // into the margin the rest of the call needs.
        let left = (deadline - ContinuousClock.now - ToolCallLimits.routerMargin + ToolCallLimits.launcherMargin) / .milliseconds(1)
        guard left >= 500 else {
            try socket.send(EgressGrant(id: call, error: "no time is left in this call for another connection"))
            return
        }
        var address = [CChar](repeating: 0, count: 64)
        var refusal: Int32 = 0
        let budget = Int32(min(ToolCallLimits.connectTime / .milliseconds(1), left))
        let descriptor = oneo_connect_tcp(host, Int32(target.port), budget, mayBePrivate ? 1 : 0, &refusal, &address, Int32(address.count))
        guard descriptor >= 0 else {
            let reason = switch refusal {
            case 1: "it resolves to a private address (serve --allow-private-providers allows it)"
            case 2: "the name does not resolve"
            default: String(cString: strerror(errno))
            }
            try socket.send(EgressGrant(id: call, error: "connecting to \(host):\(target.port) failed: \(reason)"))
            return
        }
        defer { close(descriptor) }
        try socket.send(EgressGrant(id: call, address: String(cString: address)), descriptor: descriptor)
    }

    /// An executor whose connection can no longer be trusted (a failed write or read, a
    /// timeout, a wrong answer) is dropped and killed: the supervisor starts a fresh one, and no
    /// late answer can reach a later call.
    private func abandon(_ executor: Executor, tool: String, reason: String) {
        self.logger.error("the executor connection failed; killing it for a restart", metadata: ["tool": "\(tool)", "error": "\(reason)"])
        self.pools.withLock { pools in
            if pools[tool]?.members[executor.slot] === executor { pools[tool]?.members[executor.slot] = nil }
        }
        if executor.pidfd >= 0 { _ = oneo_pidfd_kill(executor.pidfd) }
    }
}
