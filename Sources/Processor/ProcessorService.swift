import AsyncHTTPClient
import Foundation
import NIOCore
public import Logging
public import OneoWire
public import OneoPrompt
public import ServiceLifecycle
import Synchronization

/// A tenant's processor: it has no database. Jobs arrive from the queue manager over the socket
/// the supervisor connected; each runs through the job steps and its report goes back on the same
/// socket. On graceful shutdown it tells the queue manager it is draining, declines what still
/// arrives, and finishes the jobs in flight within the drain timeout (the queue manager releases
/// whatever is left when our socket closes).
public struct ProcessorService: Service {
    public struct Settings: Sendable {
        public var tenant: TenantID
        public var tenantName: String
        public var baseURL: String
        public var key: ProviderKey?
        public var tunables: EngineTunables
        public var concurrency: Int { self.tunables.processors.concurrency }
        /// After shutdown begins, in-flight jobs have this long before the process ends anyway.
        public var drainTimeout: Duration { .tunable(milliseconds: self.tunables.processors.drainTimeoutMilliseconds) }

        /// The result cache, as the tenant's own Redis user; nil: no cache.
        public var redis: RedisSettings?

        public init(
            tenant: TenantID, tenantName: String, baseURL: String, key: ProviderKey?, tunables: EngineTunables = EngineTunables(), redis: RedisSettings? = nil
        ) {
            self.tenant = tenant
            self.tenantName = tenantName
            self.baseURL = baseURL
            self.key = key
            self.tunables = tunables
            self.redis = redis
        }
    }

    private let settings: Settings
    private let connections: AsyncStream<Int32>
    private let toolConnections: AsyncStream<Int32>
    /// The connection to the supervisor's tool router, for fields with tools on.
    private let tools: ToolClient
    private let http: HTTPClient
    private let runner: JobRunner
    /// The newest provider call and its sequence number, for the heartbeat.
    public var providerCall: (sequence: Int, call: ProviderCall)? { self.runner.provider.calls.snapshot }
    private let context: PromptContext
    private let logger: Logger
    /// What heartbeats report: jobs in flight and finished.
    public let activity = Activity()
    private let drainState = DrainState()
    private let running = RunningJobs()
    private let budget = BudgetGate()

    /// Told when the queue manager closed our connection (not when we replaced or closed it).
    private let queueLost: @Sendable () -> Void

    /// - Parameter connections: each element a descriptor of a (new) connection to the queue
    ///   manager; a new one replaces the one before.
    /// - Parameter toolConnections: each element a descriptor of a (new) connection to the
    ///   supervisor's tool router.
    public init(
        settings: Settings, connections: AsyncStream<Int32>, toolConnections: AsyncStream<Int32> = AsyncStream { $0.finish() }, logger: Logger,
        queueLost: @escaping @Sendable () -> Void = {}, toolsLost: @escaping @Sendable () -> Void = {}
    ) {
        self.tools = ToolClient(lost: toolsLost)
        self.settings = settings
        self.queueLost = queueLost
        self.connections = connections
        self.toolConnections = toolConnections
        self.drainState.timeout.withLock { $0 = settings.drainTimeout }
        // Our own client: the shared one allows 8 connections per host, which would cap a tenant
        // at 8 provider calls in flight whatever its concurrency.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: settings.concurrency)
        // No redirects: a key goes to the base URL it was given for, and nowhere a reply points.
        configuration.redirectConfiguration = .disallow
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.context = PromptContext(tenantName: settings.tenantName)
        self.runner = JobRunner(
            context: self.context,
            provider: ProviderStep(
                client: ChatCompletionsClient(
                    baseURL: settings.baseURL, key: settings.key, http: self.http,
                    timeout: .milliseconds(Int64(settings.tunables.processors.providerTimeoutMilliseconds))
                ),
                policy: .init(
                    retries: settings.tunables.processors.providerRetries,
                    longestWait: .tunable(milliseconds: settings.tunables.processors.providerRetryWaitMaxMilliseconds)
                ),
                models: settings.tunables.models
            ),
            budget: self.budget,
            cache: ResultCache(settings: settings.redis, logger: logger),
            tools: self.tools
        )
        var logger = logger
        logger[metadataKey: "tenant.id"] = "\(settings.tenant)"
        self.logger = logger
    }

    /// Sets how long the coming drain may take (the supervisor's drain frame carries it).
    public func drain(within timeout: Duration) {
        self.drainState.timeout.withLock { $0 = timeout }
    }

    public func run() async throws {
        let (stop, requestStop) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withGracefulShutdownHandler {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { await self.serveConnections() }
                group.addTask {
                    for await descriptor in self.toolConnections { await self.tools.connect(descriptor) }
                }
                // Runs until shutdown begins, then until the jobs in flight end or time runs out.
                for await _ in stop { break }
                await self.waitForInFlight(until: .now + self.drainState.timeout.withLock { $0 })
                let left = self.activity.inFlight
                if left > 0 {
                    self.logger.notice("drain timeout passed; the queue manager releases the jobs still in flight", metadata: ["jobs.in_flight": "\(left)"])
                }
                group.cancelAll()
            }
        } onGracefulShutdown: {
            self.drainState.stopping.withLock { $0 = true }
            self.drainState.writer.withLock { $0 }.map { writer in Task { try? await writer.send(.draining) } }
            requestStop.yield()
        }
        try? await self.http.shutdown()
        self.logger.info("processor stopped")
    }

    /// One queue connection at a time; a new one (the queue manager restarted) replaces the old.
    private func serveConnections() async {
        var current: Task<Void, Never>?
        for await descriptor in self.connections {
            current?.cancel()
            current = Task { await self.serve(descriptor) }
        }
        current?.cancel()
    }

    private func serve(_ descriptor: Int32) async {
        do {
            let channel = try await FrameChannel<QueueMessage, ProcessorReport>.open(
                descriptor: descriptor, inboundLimit: self.settings.tunables.frames.queueMessageBytes,
                outboundLimit: self.settings.tunables.frames.processorReportBytes
            )
            self.logger.info("connected to the queue manager")
            defer { self.budget.connect(nil) }
            try await channel.run { inbound, outbound in
                self.drainState.writer.withLock { $0 = outbound }
                self.budget.connect { report in
                    do {
                        try await outbound.send(report)
                        return true
                    } catch {
                        return false
                    }
                }
                if self.drainState.stopping.withLock({ $0 }) { try await outbound.send(.draining) }
                try await withThrowingDiscardingTaskGroup { jobs in
                    for try await message in inbound {
                        switch message {
                        case .fields(let list):
                            self.context.receive(list)
                        case .budget(let answer):
                            self.budget.answer(answer)
                        case .cancel(let job, let attempt):
                            if self.running.cancel(job: job, attempt: attempt) {
                                self.logger.info("job cancelled; aborting its provider call", metadata: ["job.id": "\(job)", "job.attempt": "\(attempt)"])
                            }
                        case .job(let order):
                            // The queue manager sends no more than our concurrency; twice that is
                            // a broken peer, and a draining processor starts nothing new.
                            if self.drainState.stopping.withLock({ $0 }) || self.activity.inFlight >= 2 * self.settings.concurrency {
                                try await outbound.send(.declined(job: order.job, attempt: order.attempt))
                                continue
                            }
                            self.activity.started()
                            // Its own task, registered before the next frame is read, so a
                            // cancel frame can abort this job alone (the HTTP client aborts the
                            // call when its task is cancelled).
                            let task = Task { await self.runner.run(order, logger: self.logger) }
                            self.running.add(job: order.job, attempt: order.attempt, task: task)
                            jobs.addTask {
                                var report = await withTaskCancellationHandler { await task.value } onCancel: { task.cancel() }
                                let askedToStop = self.running.remove(job: order.job, attempt: order.attempt)
                                // Cancelled by our own shutdown or a new queue connection, not by a
                                // cancel frame: the job is not the problem, it goes back to the queue.
                                if !askedToStop, case .failed(var failure) = report, failure.code == JobFailureCode.cancelled.rawValue {
                                    failure.code = JobFailureCode.processorStopped.rawValue
                                    failure.message = "the processor stopped before finishing this job; it was released for retry"
                                    failure.retryable = true
                                    report = .failed(failure)
                                }
                                do {
                                    try await outbound.send(report)
                                } catch {
                                    self.logger.warning("could not report a job; the queue manager releases it", metadata: ["job.id": "\(order.job)", "error": "\(error)"])
                                }
                                self.activity.finished()
                            }
                        }
                    }
                }
            }
            self.logger.notice("the queue manager closed our connection; waiting for a new one")
        } catch {
            self.logger.error("queue connection failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
        // Ended by the queue manager, not by a newer connection or our shutdown: ask for another.
        if !Task.isCancelled, !self.drainState.stopping.withLock({ $0 }) { self.queueLost() }
    }

    /// Returns when nothing is in flight, or at `deadline`.
    private func waitForInFlight(until deadline: ContinuousClock.Instant) async {
        await withTaskGroup(of: Void.self) { group in
            group.addTask { try? await Task.sleep(until: deadline, clock: .continuous) }
            group.addTask {
                for await _ in self.activity.changes where self.activity.inFlight == 0 { return }
            }
            self.activity.changed()
            await group.next()
            group.cancelAll()
        }
    }
}

/// Jobs in flight and finished, read by the heartbeat and the drain.
public final class Activity: Sendable {
    private let counts = Mutex((inFlight: 0, completed: 0))
    let changes: AsyncStream<Void>
    private let change: AsyncStream<Void>.Continuation

    init() {
        (self.changes, self.change) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
    }

    public var inFlight: Int { self.counts.withLock { $0.inFlight } }
    public var completed: Int { self.counts.withLock { $0.completed } }

    func started() {
        self.counts.withLock { $0.inFlight += 1 }
    }

    func finished() {
        self.counts.withLock {
            $0.inFlight -= 1
            $0.completed += 1
        }
        self.change.yield()
    }

    func changed() {
        self.change.yield()
    }
}

/// The jobs running now, by (job, attempt), so that a cancel frame can abort one.
private final class RunningJobs: Sendable {
    private struct Key: Hashable {
        let job: JobID
        let attempt: Int
    }

    private let tasks = Mutex<[Key: (task: Task<ProcessorReport, Never>, askedToStop: Bool)]>([:])

    func add(job: JobID, attempt: Int, task: Task<ProcessorReport, Never>) {
        self.tasks.withLock { $0[Key(job: job, attempt: attempt)] = (task, false) }
    }

    /// Forgets the job; returns whether a cancel frame asked it to stop.
    func remove(job: JobID, attempt: Int) -> Bool {
        self.tasks.withLock { $0.removeValue(forKey: Key(job: job, attempt: attempt))?.askedToStop ?? false }
    }

    /// Cancels that job's task; false when it is not running here (finished, or never sent).
    func cancel(job: JobID, attempt: Int) -> Bool {
        let task = self.tasks.withLock { tasks -> Task<ProcessorReport, Never>? in
            let key = Key(job: job, attempt: attempt)
            tasks[key]?.askedToStop = true
            return tasks[key]?.task
        }
        guard let task else { return false }
        task.cancel()
        return true
    }
}

/// What shutdown and the connection share.
private final class DrainState: Sendable {
    let stopping = Mutex(false)
    let timeout = Mutex(Duration.seconds(30))
    let writer = Mutex<FrameWriter<ProcessorReport>?>(nil)
}
