import AsyncHTTPClient
import Foundation
public import Logging
public import OneoCore
public import PostgresNIO
public import ServiceLifecycle
import Synchronization

/// A tenant's job loop: wakes when the supervisor relays that work was queued (or at a slow poll),
/// claims what it has room for,
/// runs the jobs concurrently and commits each. On graceful shutdown it stops claiming and
/// finishes the jobs in flight.
public struct ProcessorService: Service {
    public struct Settings: Sendable {
        public var tenant: TenantID
        public var tenantName: String
        public var baseURL: String
        public var key: ProviderKey?
        public var concurrency: Int
        public var leaseSeconds: Int
        public var pollInterval: Duration
        /// How this process's leases are marked; the supervisor knows it too.
        public var worker: String
        /// After shutdown begins, in-flight jobs have this long before they are released.
        public var drainTimeout: Duration

        public init(
            tenant: TenantID, tenantName: String, baseURL: String, key: ProviderKey?, concurrency: Int = 16,
            leaseSeconds: Int = 120, pollInterval: Duration = .seconds(5),
            worker: String? = nil, drainTimeout: Duration = .seconds(30)
        ) {
            self.worker = worker ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
            self.drainTimeout = drainTimeout
            self.tenant = tenant
            self.tenantName = tenantName
            self.baseURL = baseURL
            self.key = key
            self.concurrency = concurrency
            self.leaseSeconds = leaseSeconds
            self.pollInterval = pollInterval
        }
    }

    private let settings: Settings
    private let database: PostgresClient
    private let wakeups: AsyncStream<Void>
    private let store: JobStore
    private let provider: ChatCompletionsClient
    private let http: HTTPClient
    private let committer: ResultCommitter
    private let preparation: PromptPreparation
    private let logger: Logger
    /// What heartbeats report: jobs in flight and finished.
    public let activity = Activity()
    private let drainTimeout: DrainTimeout

    /// - Parameter wakeups: one element each time the supervisor says this tenant has new work.
    public init(settings: Settings, database: PostgresClient, wakeups: AsyncStream<Void>, logger: Logger) {
        self.settings = settings
        self.database = database
        self.wakeups = wakeups
        self.store = JobStore(database: database, tenant: settings.tenant, worker: settings.worker, leaseSeconds: settings.leaseSeconds)
        self.drainTimeout = DrainTimeout(settings.drainTimeout)
        // Our own client: the shared one allows 8 connections per host, which would cap a tenant
        // at 8 provider calls in flight whatever its concurrency.
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: settings.concurrency)
        self.http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        self.provider = ChatCompletionsClient(baseURL: settings.baseURL, key: settings.key, http: self.http)
        var logger = logger
        logger[metadataKey: "tenant.id"] = "\(settings.tenant)"
        self.logger = logger
        self.committer = ResultCommitter(store: self.store, logger: logger)
        self.preparation = PromptPreparation(store: self.store)
    }

    /// Sets how long the coming drain may take (the supervisor's drain frame carries it).
    public func drain(within timeout: Duration) {
        self.drainTimeout.value.withLock { $0 = timeout }
    }

    public func run() async throws {
        let (wakeups, wake) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        let state = LoopState()
        await withTaskGroup(of: Void.self) { background in
            background.addTask {
                for await _ in self.wakeups {
                    state.queueDrained.withLock { $0 = false }
                    wake.yield()
                }
            }
            background.addTask { await self.committer.run() }
            background.addTask {
                // Ends when the group is cancelled at shutdown (the sleep returns early then).
                while !Task.isCancelled {
                    try? await Task.sleep(for: self.settings.pollInterval)
                    guard !Task.isCancelled else { break }
                    state.queueDrained.withLock { $0 = false }
                    wake.yield()
                }
            }
            await withGracefulShutdownHandler {
                await withDiscardingTaskGroup { jobs in
                    var nextRescue = ContinuousClock.now
                    var iterator = wakeups.makeAsyncIterator()
                    while !state.stopping.withLock({ $0 }) {
                        if ContinuousClock.now >= nextRescue {
                            nextRescue = .now + .seconds(5)
                            await self.rescue()
                        }
                        let room = self.settings.concurrency - self.activity.inFlightCount.withLock { $0 }
                        var claimed: [ClaimedJob] = []
                        if room > 0 {
                            do {
                                claimed = try await self.store.claim(limit: room, logger: self.logger)
                            } catch {
                                self.logger.error("claiming jobs failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
                            }
                        }
                        // Fewer than asked for: the queue is empty until the supervisor or the poll
                        // says otherwise, so a finishing job need not send us claiming again.
                        if room > 0, claimed.count < room { state.queueDrained.withLock { $0 = true } }
                        for job in claimed {
                            self.activity.inFlightCount.withLock { $0 += 1 }
                            jobs.addTask {
                                await self.process(job)
                                self.activity.inFlightCount.withLock { $0 -= 1 }
                                self.activity.finished()
                                if !state.queueDrained.withLock({ $0 }) { wake.yield() }
                            }
                        }
                        // A full batch means more may be waiting: claim again at once.
                        if room > 0, claimed.count == room { continue }
                        guard await iterator.next() != nil else { break }
                    }
                    self.logger.info("draining", metadata: ["jobs.in_flight": "\(self.activity.inFlightCount.withLock { $0 })"])
                }
            } onGracefulShutdown: {
                state.stopping.withLock { $0 = true }
                wake.yield()
                self.releaseAfterDrainTimeout()
            }
            background.cancelAll()
        }
        try await self.http.shutdown()
        self.logger.info("processor stopped")
    }

    /// When the drain deadline passes with jobs still in flight, they go back to the queue (our
    /// late results would be fenced out anyway) and the process ends: nothing of another
    /// tenant waits on it, and this tenant's next processor takes the jobs at once.
    private func releaseAfterDrainTimeout() {
        let timeout = self.drainTimeout.value.withLock { $0 }
        Task {
            try? await Task.sleep(for: timeout)
            let inFlight = self.activity.inFlight
            guard inFlight > 0 else { return }
            var released = 0
            do {
                released = try await self.store.releaseHeldJobs(logger: self.logger)
            } catch {
                self.logger.error("releasing in-flight jobs failed; the supervisor releases them when we are gone", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
            self.logger.notice("drain timeout passed; released in-flight jobs for retry and exiting", metadata: [
                "drain.timeout": "\(timeout)", "jobs.in_flight": "\(inFlight)", "jobs.released": "\(released)",
            ])
            exit(0)
        }
    }

    private func rescue() async {
        do {
            let rescued = try await self.store.rescueExpiredLeases(logger: self.logger)
            if rescued > 0 { self.logger.notice("returned jobs with expired leases", metadata: ["jobs.rescued": "\(rescued)"]) }
        } catch {
            self.logger.error("rescuing expired leases failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }

    private func process(_ job: ClaimedJob) async {
        var logger = self.logger
        logger[metadataKey: "job.id"] = "\(job.id)"
        logger[metadataKey: "job.attempt"] = "\(job.attempt)"
        let started = ContinuousClock.now
        do {
            guard let data = job.recordData else {
                try await self.store.fail(job, code: "record_missing", message: "the record no longer exists", retryAfter: nil, logger: logger)
                return
            }
            let prepared: PromptPreparation.Prepared
            switch try await self.preparation.prepare(job, logger: logger) {
            case .success(let ready): prepared = ready
            case .failure(let error):
                try await self.store.fail(job, code: "bad_template", message: error.description, retryAfter: nil, logger: logger)
                return
            }
            let rendered = prepared.renderer.render(prepared.template, data: data, metadata: .init(
                recordID: job.record, pipelineName: job.pipelineName, tenantName: self.settings.tenantName, currentUser: job.triggeredBy
            ))
            logger.info("prompt rendered", metadata: [
                "prompt.bytes": "\(rendered.prompt.utf8.count)", "fields.excluded": "\(rendered.excludedFieldCount)",
                "keys.excluded": "\(rendered.excludedKeys)", "fields.dropped": "\(rendered.droppedFields.count)",
                "values.redacted": "\(rendered.redactions.values.reduce(0, +))",
            ])
            let request = ChatCompletionsClient.request(config: job.config, model: job.model, prompt: rendered.prompt)
            switch await self.provider.complete(request) {
            case .failure(let failure):
                let delay: Duration? = switch failure.kind {
                case .permanent: nil
                case .retryable(let after): after ?? Self.backoff(attempt: job.attempt)
                }
                logger.warning("provider call failed", metadata: ["error.code": "\(failure.code)", "retry": "\(delay != nil)"])
                try await self.store.fail(job, code: failure.code, message: failure.message, retryAfter: delay, logger: logger)
            case .completed(let completion):
                let elapsed = ContinuousClock.now - started
                let milliseconds = Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
                let cost = ModelPricing.forModel(job.model).cost(promptTokens: completion.promptTokens, completionTokens: completion.completionTokens)
                let value: JSONValue = job.config.outputType == .text
                    ? .string(completion.content)
                    : ((try? JSONValue.parse(Array(completion.content.utf8))) ?? .string(completion.content))
                let result = JobResult(
                    value: value,
                    output: ["content": value],
                    audit: rendered.audit,
                    promptTokens: completion.promptTokens,
                    completionTokens: completion.completionTokens,
                    cost: cost,
                    processingMilliseconds: milliseconds
                )
                if try await self.committer.commit(job, result) {
                    logger.info("job completed", metadata: ["job.cost_micros": "\(cost.rawValue)", "job.ms": "\(milliseconds)"])
                } else {
                    logger.warning("lease lost before commit; result discarded")
                }
            }
        } catch {
            logger.error("job attempt failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            try? await self.store.fail(job, code: "internal", message: "internal error; see the processor log", retryAfter: Self.backoff(attempt: job.attempt), logger: logger)
        }
    }

    /// 1 s, 2 s, 4 s … capped at 60 s.
    static func backoff(attempt: Int) -> Duration {
        .seconds(min(60, 1 << min(max(attempt - 1, 0), 6)))
    }
}

/// Jobs in flight and finished, read by the heartbeat.
public final class Activity: Sendable {
    fileprivate let inFlightCount = Mutex(0)
    private let completedCount = Mutex(0)

    public var inFlight: Int { self.inFlightCount.withLock { $0 } }
    public var completed: Int { self.completedCount.withLock { $0 } }

    fileprivate func finished() {
        self.completedCount.withLock { $0 += 1 }
    }
}

/// How long the coming drain may take; the supervisor's drain frame can shorten it.
private final class DrainTimeout: Sendable {
    let value: Mutex<Duration>
    init(_ initial: Duration) { self.value = Mutex(initial) }
}

/// What the claim loop and its job tasks share.
private final class LoopState: Sendable {
    let stopping = Mutex(false)
    /// The last claim found fewer jobs than it had room for.
    let queueDrained = Mutex(false)
}
