import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import OneoRedis
import NIOPosix
#if canImport(Glibc)
import Glibc
#endif

/// One supervised child as the supervisor tracks it. Lives inside the actor and never leaves it.
final class SupervisedChild {
    enum Launch {
        case api
        case queueManager
        case processor(TenantID, slug: String)
        /// One of a tool's executors (`oneo-tool TOOL`), which speaks the tool protocol on fd 3.
        case toolExecutor(String, slot: Int)
        /// PostgreSQL, Redis: a fixed command line.
        case fixed(ChildSpec)
    }

    typealias Hold = ChildState.Hold

    let name: String
    let role: ChildSpec.Role
    let launch: Launch
    /// The restart policy's machine.
    var lifecycle: ChildLifecycle
    /// Everything else decided about the child: holds, the process slot, liveness, idleness.
    var state: ChildState
    /// The handles the actions act on.
    var channel: FrameSocket?
    var worker: String?
    /// Identifies the supervising loop; a loop that finds another id here ends.
    var loopID = 0
    var loop: Task<Void, Never>?
    /// A processor's newest provider call, and when we heard of it.
    var providerCall: (call: ProviderCall, heard: ContinuousClock.Instant)?
    /// Frames sent to this child that it has not yet answered with `accepted`, by request id.
    var awaiting: [UInt32: Awaited] = [:]
    /// When this processor last said the queue manager closed its connection.
    var lastQueueLost: ContinuousClock.Instant?
    /// The generation of this processor that was given a tool connection, and when the last was.
    var toolsGeneration: Int?
    var lastToolsLost: ContinuousClock.Instant?

    /// What an unanswered request was, and when it went out.
    struct Awaited {
        enum Kind {
            /// A drain: unanswered, the child gets SIGTERM.
            case drain
            /// A queue connection for this processor (on either end), made while the processor
            /// and the queue manager had these generations: unanswered, the processor gets a
            /// fresh one on its next heartbeat (if both are still those processes).
            case handOver(processor: String, processorGeneration: Int, queueGeneration: Int)
        }

        let kind: Kind
        let sent: ContinuousClock.Instant
    }

    init(name: String, role: ChildSpec.Role, launch: Launch, policy: RestartPolicy) {
        self.name = name
        self.role = role
        self.launch = launch
        self.lifecycle = ChildLifecycle(policy: policy)
        self.state = ChildState(now: .now)
    }

    // Read-through views of the state, for logs, status and the actions.
    var pid: pid_t? { self.state.pid }
    var generation: Int { self.state.generation }
    var preparing: Bool { self.state.isPreparing }
    var inFlight: Int { self.state.inFlight }
    var hold: Hold? {
        get { self.state.hold }
        set { self.state.hold = newValue }
    }
    var alwaysOn: Bool {
        get { self.state.alwaysOn }
        set { self.state.alwaysOn = newValue }
    }
    var restartRequested: Bool {
        get { self.state.restartRequested }
        set { self.state.restartRequested = newValue }
    }

    var tenant: TenantID? {
        if case .processor(let id, _) = self.launch { return id }
        return nil
    }

    var slug: String? {
        if case .processor(_, let slug) = self.launch { return slug }
        return nil
    }
}

extension Supervisor {
    @discardableResult
    func addChild(name: String, role: ChildSpec.Role, launch: SupervisedChild.Launch) -> SupervisedChild {
        if let existing = self.children[name] { return existing }
        let child = SupervisedChild(name: name, role: role, launch: launch, policy: self.configuration.restartPolicy)
        self.children[name] = child
        return child
    }

    /// Starts the child's supervising loop, replacing a loop that is waiting out a backoff.
    func supervise(_ child: SupervisedChild) {
        guard child.state.mayStart(stopping: self.stopping) else { return }
        child.loop?.cancel()
        child.loopID += 1
        let id = child.loopID
        let name = child.name
        child.loop = Task { await self.superviseLoop(name, id: id) }
    }

    /// Spawns the child, waits for its exit, and decides by the policy whether and when to start it
    /// again, until it is held, the supervisor stops, or another loop replaces this one.
    private func superviseLoop(_ name: String, id: Int) async {
        // However the loop ends (held, stopping, replaced), it is no longer this child's loop:
        // the next demand starts a new one instead of waiting on one that has returned.
        defer {
            if let child = self.children[name], child.loopID == id { child.loop = nil }
        }
        while let child = self.children[name], child.loopID == id, !self.stopping, child.hold == nil, !Task.isCancelled {
            let decision: ChildLifecycle.Decision
            do {
                guard let status = try await self.runOnce(child, loop: id) else { return }
                let expected = self.stopping || child.hold != nil || child.restartRequested
                decision = child.lifecycle.exited(status.description, at: .now, expected: expected, random: Double.random(in: 0..<1))
                if expected {
                    self.logger.info("child stopped", metadata: ["child": "\(name)", "child.exit": "\(status)", "reason": "\(child.hold?.rawValue ?? (child.restartRequested ? "restart" : "shutdown"))"])
                }
            } catch {
                decision = child.lifecycle.failedToStart(error.description, at: .now, random: Double.random(in: 0..<1))
                self.logger.error("child failed to start", metadata: ["child": "\(name)", "error": "\(error)"])
            }
            let wasRestart = child.restartRequested
            if child.state.afterExit(stopping: self.stopping) == .startAgain {
                // An operator's restart resets the policy; work arriving during an idle drain
                // simply starts it again.
                if wasRestart { child.lifecycle.operatorStart() }
                continue
            }
            switch decision {
            case .stayStopped:
                return
            case .restart(let at):
                self.logger.error("child exited; restarting", metadata: [
                    "child": "\(name)", "child.exit": "\(child.lifecycle.lastExit ?? "")",
                    "restart.delay": "\(at - .now)", "restarts": "\(child.lifecycle.restarts)",
                ])
                try? await Task.sleep(until: at, clock: .continuous)
            case .holdBack(let until):
                self.logger.critical("child is crash-looping; holding it back", metadata: [
                    "child": "\(name)", "child.exit": "\(child.lifecycle.lastExit ?? "")",
                    "hold": "\(until - .now)", "restarts": "\(child.lifecycle.restarts)",
                    "hint": "fix the cause, then `oneo-ai tenant start` (or wait for the next try)",
                ])
                try? await Task.sleep(until: until, clock: .continuous)
            }
        }
    }

    /// One process of the child, from spawn to exit.
    /// nil when another loop took over while this one prepared.
    private func runOnce(_ child: SupervisedChild, loop id: Int) async throws(SpawnError) -> ExitStatus? {
        // From here until the process's pid is recorded (reading the tenant, opening its key,
        // the spawn itself: all suspension points), no other loop may start for this child:
        // `supervise` refuses while `preparing`, or two processes of one child would run.
        guard child.state.beginPreparing() else { return nil }
        let prepared: Prepared
        do {
            prepared = try await self.prepare(child)
        } catch {
            child.state.preparationEnded()
            throw error
        }
        guard child.loopID == id, !self.stopping, child.hold == nil else {
            child.state.preparationEnded()
            return nil
        }
        let spawned = await self.spawnThread.run { Result { () throws(SpawnError) in try Spawner.spawn(prepared.spec) } }
        let running: RunningChild
        do {
            running = try spawned.get()
        } catch {
            child.state.preparationEnded()
            throw error
        }
        self.table.childStarted()
        let generation = child.state.spawned(pid: running.pid, now: .now)
        child.channel = running.channel
        child.awaiting.removeAll()
        child.providerCall = nil
        child.lifecycle.spawned(at: .now)
        self.io.watchOutput(of: child.name, descriptor: running.output)
        if case .toolExecutor(let tool, let slot) = child.launch, let channel = running.channel {
            // Its socket is the router's: tool requests and answers, no bootstrap, no heartbeats.
            let descriptor = fcntl(channel.descriptor, F_DUPFD_CLOEXEC, 3)
            if descriptor >= 0 {
                self.tools.executorStarted(tool: tool, slot: slot, descriptor: descriptor, pid: running.pid)
            } else {
                self.logger.error("cannot duplicate an executor's socket; it goes unused until it restarts", metadata: ["child": "\(child.name)", "errno": "\(errno)"])
            }
            child.lifecycle.ready()
            // Processors that came up while no executor ran get their tool connection now.
            for processor in self.children.values where processor.role == .processor && processor.lifecycle.state == .running
                && !self.tools.isConnected(processor.name) {
                self.connectToTools(processor)
            }
        } else if let channel = running.channel {
            let worker = "\(self.hostName):\(running.pid)"
            child.worker = worker
            let name = child.name
            let mailbox = FrameMailbox()
            self.io.watchFrames(of: name, on: channel) { message in
                guard mailbox.offer(message) else { return }
                Task {
                    while true {
                        let (messages, dropped) = mailbox.take()
                        if dropped > 0 { self.logger.warning("child floods its socket; frames dropped", metadata: ["child": "\(name)", "frames.dropped": "\(dropped)"]) }
                        if messages.isEmpty { return }
                        for message in messages { await self.heard(name, generation: generation, message) }
                    }
                }
            }
            do {
                // A fresh socket's buffer holds far more than one bootstrap frame: no blocking.
                try channel.send(self.bootstrap(for: child, worker: worker, prepared: prepared))
            } catch {
                self.logger.error("bootstrap frame not delivered; killing the child", metadata: ["child": "\(child.name)", "error": "\(error)"])
                kill(running.pid, SIGKILL)
            }
        } else {
            // Not ours: alive is all it can tell us.
            child.lifecycle.ready()
        }
        self.logger.info("child started", metadata: ["child": "\(child.name)", "child.pid": "\(running.pid)"])
        // Held (stopped, suspended, shutting down) while the spawn was in flight: the new
        // process goes at once instead of running unheld work.
        if child.hold != nil || self.stopping {
            self.logger.notice("child was held while it started; stopping it", metadata: ["child": "\(child.name)", "reason": "\(child.hold?.rawValue ?? "shutting down")"])
            self.signal(child, SIGTERM, killAfter: self.configuration.killGrace)
        }
        let status = await self.table.waitForExit(running.pid)
        if case .toolExecutor(let tool, let slot) = child.launch { self.tools.executorStopped(tool: tool, slot: slot) }
        // Its key stays only as long as its processor: images are made during that processor's calls.
        if case .processor(let tenant, _) = child.launch { self.tools.setProvider(tenant, nil) }
        child.state.exited()
        child.channel = nil
        // The next queue manager releases what this one held; a processor's attempts are
        // released by the queue manager the moment its socket closes.
        if child.role == .qmgr, let worker = child.worker { self.retiredQueueWorkers = Array((self.retiredQueueWorkers + [worker]).suffix(8)) }
        child.worker = nil
        return status
    }

    private struct Prepared {
        let spec: ChildSpec
        let providerKey: ProviderKey?
        /// A processor's tenant row as it was read for this start.
        let tenant: TenantRuntime?
        /// A processor's Redis: logged in as its tenant's cache user.
        var redis: RedisSettings? = nil
    }

    private func prepare(_ child: SupervisedChild) async throws(SpawnError) -> Prepared {
        switch child.launch {
        case .fixed(let spec):
            return Prepared(spec: spec, providerKey: nil, tenant: nil)
        case .queueManager:
            let spec = ChildSpec(role: .qmgr, name: child.name, executable: self.executable, arguments: ["qmgr"], wantsChannel: true)
            return Prepared(spec: try self.unprivileged(spec, as: ProcessAccount.forQueueManager(uidBase: self.configuration.processorUIDBase)), providerKey: nil, tenant: nil)
        case .api:
            let spec = ChildSpec(
                role: .api, name: child.name, executable: self.executable,
                arguments: ["api", "--host", self.configuration.host, "--port", String(self.configuration.port)] + self.configuration.apiArguments,
                wantsChannel: true
            )
            // The process that parses untrusted HTTP never runs as root either, and reaches Redis
            // only to ping it.
            let account = ProcessAccount.forAPI(uidBase: self.configuration.processorUIDBase)
            let prepared = Prepared(spec: try self.unprivileged(spec, as: account, bindsPrivilegedPort: self.configuration.port < 1024), providerKey: nil, tenant: nil)
            guard let services = self.services else { return prepared }
            var withRedis = prepared
            withRedis.redis = await self.healthLogin(services: services)
            return withRedis
        case .processor(let tenant, let slug):
            return try await self.prepareProcessor(child, tenant: tenant, slug: slug)
        case .toolExecutor(let tool, _):
            var account = ProcessAccount.forToolExecutor(tool, uidBase: self.configuration.processorUIDBase)
            let policy = SandboxPaths.policy(tool: tool, executable: self.executable)
            // Its jails' processes run as the executor's own (unprivileged) identity.
            let identity = account.map { ($0.uid, $0.gid) } ?? (getuid(), getgid())
            var arguments = [tool, "--policy", policy, "--sandbox-uid", "\(identity.0)", "--sandbox-gid", "\(identity.1)"]
            if tool == "web_search", let url = self.configuration.searchURL { arguments += ["--backend", url] }
            if tool == "file_search", let files = self.services?.filesDatabase, case .unixSocket(let path) = files.endpoint {
                arguments += ["--database-socket", path, "--database-name", files.database, "--database-user", files.username]
                // The embedded database's socket opens to its client group (API, queue manager).
                account?.groups = [ProcessAccount.databaseGroup(uidBase: self.configuration.processorUIDBase)]
            }
            let spec = ChildSpec(
                role: .tool, name: child.name, executable: SandboxPaths.executor(beside: self.executable),
                arguments: arguments, wantsChannel: true
            )
            return Prepared(spec: try self.unprivileged(spec, as: account), providerKey: nil, tenant: nil)
        }
    }

    /// A processor is prepared from its tenant's row as it is now, so that a new key, model or
    /// base URL reaches it with the next start. Its key is opened here and nowhere else.
    private func prepareProcessor(_ child: SupervisedChild, tenant: TenantID, slug: String) async throws(SpawnError) -> Prepared {
        guard let services = self.services else { throw SpawnError(child: child.name, detail: "the database is not ready") }
        let row: TenantRuntime?
        do {
            row = try await services.directory.tenant(tenant, logger: self.logger)
        } catch {
            throw SpawnError(child: child.name, detail: "reading the tenant failed: \(SafeErrorDescription.of(error))")
        }
        guard let row, row.active else { throw SpawnError(child: child.name, detail: "tenant \(slug) is no longer active") }
        let key: ProviderKey?
        do {
            if row.usesOperatorKey {
                // The tenant chose the operator's key: never its own, never silently.
                guard let sealed = row.operatorSealedKey, let url = row.operatorBaseURL else {
                    throw SpawnError(child: child.name, detail: "tenant \(slug) uses the operator's key, and none is set (oneo-ai operator set-key)")
                }
                // Opens only with the base URL it was sealed for, which is where the processor sends it.
                key = try services.sealer.open(sealed, for: .operatorFallback(baseURL: url))
            } else {
                key = try row.sealedKey.map { sealed throws(SecretError) in try services.sealer.open(sealed, tenant: tenant) }
            }
        } catch let error as SpawnError {
            throw error
        } catch {
            throw SpawnError(child: child.name, detail: "cannot open the tenant's provider key: \(error)")
        }
        // uid = base + tenant id: an id past 2^24 would wrap onto another tenant's uid, root, or
        // "unchanged" (review L14); such a tenant gets no processor and the operator hears why.
        guard (1..<(1 << 24)).contains(tenant.rawValue) else {
            throw SpawnError(child: child.name, detail: "tenant id \(tenant.rawValue) is outside 1..<2^24, where processor uids are unique")
        }
        var spec = ChildSpec(
            role: .processor, name: child.name, tenant: tenant, executable: self.executable,
            arguments: ["processor", "--tenant", slug],
            wantsChannel: true
        )
        spec = try self.unprivileged(spec, as: ProcessAccount.forProcessor(tenant: tenant.rawValue, uidBase: self.configuration.processorUIDBase))
        // The image executor asks this tenant's provider with this key, one request at a time.
        self.tools.setProvider(tenant, key.map { ToolCredential(baseURL: row.providerBaseURL, key: $0.secret) })
        return Prepared(spec: spec, providerKey: key, tenant: row, redis: await self.cacheLogin(for: tenant, services: services))
    }

    /// The spec run through setpriv as `account` (nil: we are not root, nothing to drop). A port
    /// below 1024 keeps only the capability to bind it.
    private func unprivileged(_ spec: ChildSpec, as account: ProcessAccount?, bindsPrivilegedPort: Bool = false) throws(SpawnError) -> ChildSpec {
        guard let account else { return spec }
        if let reason = account.cannotExecute(spec.executable) {
            throw SpawnError(child: spec.name, detail: "\(reason): the API and processors run unprivileged; install oneo-ai where others may execute it, or change --processor-uid-base")
        }
        var wrapped = spec
        let capabilities = bindsPrivilegedPort ? ["--inh-caps=+net_bind_service", "--ambient-caps=+net_bind_service"] : []
        wrapped.arguments = account.setprivArguments + capabilities + ["--", spec.executable] + spec.arguments
        wrapped.executable = ProcessAccount.setpriv
        return wrapped
    }

    /// Each child gets what its role needs and nothing more: the processor no database, the API
    /// and the queue manager no provider key.
    private func bootstrap(for child: SupervisedChild, worker: String, prepared: Prepared) -> ChildBootstrap {
        let services = self.services!
        var bootstrap = ChildBootstrap(
            database: child.role == .api ? services.apiDatabase : child.role == .qmgr ? services.queueDatabase : nil,
            redis: [.processor, .api].contains(child.role) ? prepared.redis : nil, tenant: child.tenant, providerKey: prepared.providerKey,
            supervisor: getpid(), worker: worker, tunables: self.configuration.tunables
        )
        bootstrap.tenantName = prepared.tenant?.name
        bootstrap.providerBaseURL = prepared.tenant?.providerBaseURL
        if child.role == .qmgr {
            bootstrap.retiredWorkers = self.retiredQueueWorkers
            // Tools are offered only while their executors exist to run them.
            let started = self.startableTools
            if !started.isEmpty {
                bootstrap.toolTicketKey = self.tools.key
                bootstrap.startedTools = started
            }
        }
        return bootstrap
    }

    /// A frame from a child (nil: one we could not read, which ends our reading of that child).
    func heard(_ name: String, generation: Int, _ message: ChildMessage?) {
        guard let child = self.children[name], child.state.isCurrent(generation) else { return }
        switch message {
        case .ready:
            child.state.heard(now: .now)
            child.lifecycle.ready()
            self.logger.info("child ready", metadata: ["child": "\(name)", "child.pid": "\(child.pid ?? 0)"])
            switch child.role {
            case .processor:
                self.connectToQueue(child)
                // Once per process: a repeated `ready` makes no second connection.
                if child.toolsGeneration != child.generation {
                    child.toolsGeneration = child.generation
                    self.connectToTools(child)
                }
            case .qmgr: self.connectProcessorsToQueue()
            default: break
            }
        case .need(let tenants):
            guard child.role == .qmgr else { return }
            child.state.heard(now: .now)
            for tenant in tenants { Task { await self.workQueued(for: tenant) } }
        case .tenantsChanged:
            guard child.role == .qmgr else { return }
            self.tenantsChanged.yield()
        case .listening(let port):
            guard child.role == .api else { return }
            self.apiListening(on: port)
        case .health(let request, let tenant):
            // Only the API asks, and only about the tenant its caller authenticated as; the answer
            // names that tenant's processor alone.
            guard child.role == .api, let channel = child.channel else { return }
            let processor = self.processorOfTenant[tenant].flatMap { self.children[$0] }.flatMap { $0.role == .processor && $0.tenant == tenant ? $0 : nil }
            self.io.send(.health(request: request, processor.map(self.health(of:))), to: channel)
        case .accepted(let request):
            child.awaiting[request] = nil
        case .queueLost:
            // The queue manager closed this processor's connection (it broke the protocol, or a
            // write failed): a fresh one, or the processor would sit connected to nothing.
            guard child.role == .processor else { return }
            // At most once a second: each hand-over costs a socketpair.
            if let last = child.lastQueueLost, ContinuousClock.now - last < .seconds(1) { return }
            child.lastQueueLost = .now
            child.state.queueGeneration = nil
            self.connectToQueue(child)
        case .toolsLost:
            guard child.role == .processor else { return }
            // At most once a second: each hand-over costs a socketpair and a thread.
            if let last = child.lastToolsLost, ContinuousClock.now - last < .seconds(1) { return }
            child.lastToolsLost = .now
            self.connectToTools(child)
        case .providerCall(let call):
            guard child.role == .processor else { return }
            child.providerCall = (call, .now)
        case .heartbeat(let inFlight, let completed):
            let needsQueue = child.state.heartbeat(inFlight: inFlight, completed: completed, now: .now)
            // A processor whose connection could not be handed over gets another try.
            if child.role == .processor, needsQueue { self.connectToQueue(child) }
        case nil:
            self.logger.error("child broke the frame protocol; it will be treated as silent", metadata: ["child": "\(name)"])
        }
    }

    /// Every 250 ms: terminate children that stopped talking, stop processors with nothing to do.
    func watchChildren() async {
        while !Task.isCancelled {
            try? await Task.sleep(for: .milliseconds(250))
            guard !self.stopping else { continue }
            let now = ContinuousClock.now
            for child in self.children.values {
                // An executor's socket carries tool calls, not heartbeats: alive is all it says.
                guard let pid = child.pid, child.channel != nil, child.role != .tool else { continue }
                self.checkAnswers(child, now: now)
                let action = child.state.tick(
                    now: now, heartbeatTimeout: self.configuration.heartbeatTimeout, idleTimeout: self.configuration.idleTimeout,
                    idleStoppable: child.role == .processor && child.lifecycle.state == .running
                )
                switch action {
                case .none:
                    break
                case .terminateSilent(let silentFor):
                    self.logger.error("child is silent; terminating it", metadata: [
                        "child": "\(child.name)", "child.pid": "\(pid)", "silent.for": "\(silentFor)",
                    ])
                    self.signal(child, SIGTERM, killAfter: self.configuration.killGrace)
                case .stopIdle(let idleFor):
                    self.logger.info("processor idle; stopping it until work arrives", metadata: ["child": "\(child.name)", "idle.for": "\(idleFor)"])
                    self.drain(child, timeout: self.configuration.drainTimeout)
                }
            }
        }
    }

    /// A fresh request id for a frame a child must answer.
    func request() -> UInt32 {
        defer { self.nextRequest = self.nextRequest == .max ? 1 : self.nextRequest + 1 }
        return self.nextRequest
    }

    /// Requests a child has left unanswered too long: a drain becomes SIGTERM (our children drain
    /// on it too), a hand-over is made again with a fresh socketpair.
    func checkAnswers(_ child: SupervisedChild, now: ContinuousClock.Instant) {
        for (request, awaited) in child.awaiting where now - awaited.sent > Self.answerTimeout {
            child.awaiting[request] = nil
            switch awaited.kind {
            case .drain:
                self.logger.warning("child did not answer its drain; sending SIGTERM", metadata: ["child": "\(child.name)"])
                self.signal(child, SIGTERM, killAfter: self.configuration.drainTimeout + self.configuration.killGrace)
            case .handOver(let name, let processorGeneration, let queueGeneration):
                guard let processor = self.children[name], processor.state.isCurrent(processorGeneration),
                      processor.state.queueGeneration == queueGeneration else { continue }
                if let channel = processor.channel, self.io.holdsDescriptor(for: channel) {
                    // It has not even read the frame: a processor that does not read its socket
                    // is broken (or hostile), and would hold our descriptors.
                    self.logger.error("processor does not read its socket; terminating it", metadata: ["child": "\(name)"])
                    self.signal(processor, SIGTERM, killAfter: self.configuration.killGrace)
                } else {
                    self.logger.warning("a queue connection was not taken; a fresh one follows the next heartbeat", metadata: ["child": "\(name)"])
                    processor.state.queueGeneration = nil
                }
            }
        }
    }

    /// How long a child has to answer a drain or take a connection.
    static let answerTimeout = Duration.seconds(5)

    /// Asks the child to finish its work within `timeout` and exit (our children by a drain
    /// frame, others by SIGTERM), and kills it if it is still there after the timeout and the
    /// grace period.
    func drain(_ child: SupervisedChild, timeout: Duration) {
        guard child.pid != nil else { return }
        child.lifecycle.draining()
        let request = self.request()
        if let channel = child.channel, self.io.send(.drain(timeoutMilliseconds: Int(timeout / .milliseconds(1)), request: request), to: channel) {
            child.awaiting[request] = .init(kind: .drain, sent: .now)
            self.signal(child, nil, killAfter: timeout + self.configuration.killGrace)
        } else {
            // Our children drain on SIGTERM too, with the bootstrap's timeout.
            let timeout = child.channel == nil ? timeout : self.configuration.drainTimeout
            self.signal(child, SIGTERM, killAfter: timeout + self.configuration.killGrace)
        }
    }

    /// Sends `signal` now (PostgreSQL gets SIGINT for SIGTERM: its "fast" shutdown; SIGTERM
    /// would wait for every client), then SIGKILL after `killAfter` if that same process is still
    /// there.
    func signal(_ child: SupervisedChild, _ signal: Int32?, killAfter: Duration) {
        guard let pid = child.pid else { return }
        child.state.terminationSent = true
        if let signal { kill(pid, child.role == .postgres && signal == SIGTERM ? SIGINT : signal) }
        let generation = child.generation
        let name = child.name
        Task {
            try? await Task.sleep(for: killAfter)
            if self.isRunning(name, generation: generation) {
                self.logger.warning("child did not stop in time; killing it", metadata: ["child": "\(name)", "child.pid": "\(pid)"])
                kill(pid, SIGKILL)
            }
        }
    }

    private func isRunning(_ name: String, generation: Int) -> Bool {
        guard let child = self.children[name] else { return false }
        return child.state.isCurrent(generation)
    }

    /// At shutdown: stops every child of these roles (processors drain up to `timeout`) and waits
    /// for them.
    func stopAll(roles: Set<ChildSpec.Role>, timeout: Duration) async {
        let chosen = self.children.values.filter { roles.contains($0.role) }
        for child in chosen {
            child.hold = .shutdown
            if child.pid != nil {
                self.drain(child, timeout: timeout)
            } else {
                child.loop?.cancel()
                child.lifecycle.hold()
            }
        }
        for child in chosen { await child.loop?.value }
    }

    /// Waits (polling every 10 ms: operator commands only) until `condition` holds or `deadline`.
    func wait(until deadline: ContinuousClock.Instant, for condition: () -> Bool) async -> Bool {
        while !condition() {
            guard ContinuousClock.now < deadline else { return false }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return true
    }
}
