/// Every tunable of the engine in one typed value: read once by `serve` (defaults, then a JSON
/// file, then `ONEO_*` environment variables, then flags), checked, and handed to each child in
/// its bootstrap frame, so that no child reads settings of its own and no tunable is a literal
/// somewhere else. Keys are the dotted paths of `Key` (`queue.lease_seconds`), which the file
/// uses as nested objects and the environment as `ONEO_QUEUE_LEASE_SECONDS`.
public struct EngineTunables: Sendable, Codable, Equatable {
    public struct Queue: Sendable, Codable, Equatable {
        /// How long a claimed attempt's lease lasts; extended every quarter of it while it runs.
        public var leaseSeconds = 120
        /// Claim again at least this often (NOTIFY and reports make most claims immediate).
        public var claimPollMilliseconds = 1_000
        /// How often tenants with due work and no processor are looked for.
        public var demandPollMilliseconds = 2_000
        /// How often expired leases are returned to the queue.
        public var rescueIntervalMilliseconds = 5_000
        /// Results committed in one transaction at most.
        public var commitBatch = 256
        /// While processors hold work, a NOTIFY's claim waits this long for others to join it
        /// (PostgreSQL's `commit_delay` idea): fewer, larger claims under load; none when idle.
        public var claimWindowMilliseconds = 5
        /// Under load (a commit ended moments ago), a small batch of results waits this long for
        /// more before it commits.
        public var commitWindowMilliseconds = 5
        /// The queue manager's PostgreSQL connections (one of them listens); at most 16, its
        /// role's connection limit.
        public var connections = 4
        /// A job that fails with a transient error is queued again this many times (the
        /// reference's `MAX_RETRIES`): three retries, four attempts.
        public var maxRetries = 3
        /// The first retry's delay ceiling (the reference's `RETRY_DELAY`); each retry doubles
        /// it, and the delay is drawn uniformly below it (full jitter).
        public var retryDelayMilliseconds = 60_000
        /// No backoff ceiling grows past this.
        public var retryDelayMaxMilliseconds = 3_600_000
        /// An attempt still running this long after it was handed out is cancelled and goes
        /// back to the queue as a retry (`attempt_deadline`), whatever its processor says.
        public var attemptDeadlineMilliseconds = 300_000
    }

    public struct Processors: Sendable, Codable, Equatable {
        /// Jobs each tenant's processor runs at once.
        public var concurrency = 16
        /// A processor with nothing to do for this long is stopped (always-on tenants excepted).
        public var idleTimeoutMilliseconds = 60_000
        /// How long processors may finish in-flight jobs at shutdown, or by default on restart.
        public var drainTimeoutMilliseconds = 30_000
        /// One provider call's timeout, reply included.
        public var providerTimeoutMilliseconds = 60_000
        /// A transient provider error is retried in place this many times before the attempt
        /// goes back to the queue.
        public var providerRetries = 2
        /// The longest `Retry-After` waited in place; a longer one ends the attempt and the
        /// queue manager queues the job for then.
        public var providerRetryWaitMaxMilliseconds = 10_000
    }

    public struct Maintenance: Sendable, Codable, Equatable {
        /// How often the queue manager runs the maintenance below; 0 turns it off.
        public var intervalMilliseconds = 3_600_000
        /// Finished jobs older than this many days are deleted (their usage rows stay); 0 keeps
        /// them forever.
        public var cleanupAfterDays = 30
        /// Failed jobs whose last error was transient are queued again by maintenance at most
        /// this many times each (the reference's `retry_failed_jobs`); 0 turns that off.
        public var retryFailedTimes = 1
    }

    public struct Budgets: Sendable, Codable, Equatable {
        /// The budget of an AI field that sets no `budget_limit_cents`, per calendar month (the
        /// reference's `BUDGET_LIMIT_CENTS`, $10); 0 means no default: such a field is then
        /// bounded by the tenant's monthly budget alone.
        public var fieldLimitCents = 1_000
    }

    public struct Tools: Sendable, Codable, Equatable {
        /// Executor processes per tool: calls of different tenants run side by side up to this
        /// many, each executor keeping its own warm pool.
        public var executors = 2
    }

    public struct Supervision: Sendable, Codable, Equatable {
        public var heartbeatIntervalMilliseconds = 1_000
        /// A child silent this long is terminated and restarted.
        public var heartbeatTimeoutMilliseconds = 10_000
        /// Between SIGTERM (or a drain deadline) and SIGKILL.
        public var killGraceMilliseconds = 5_000
        /// How often always-on and suspended tenants are read again.
        public var tenantPollMilliseconds = 2_000
        /// The supervisor's PostgreSQL connections (migrations, tenant rows, sealed keys).
        public var connections = 2
    }

    public struct API: Sendable, Codable, Equatable {
        /// The API's PostgreSQL connections; at most 64, its role's connection limit.
        public var connections = 10
    }

    public struct Frames: Sendable, Codable, Equatable {
        /// A job frame carries a whole record.
        public var queueMessageBytes = 16 << 20
        /// A report carries one AI output (at most 1 MiB, checked) and its audit.
        public var processorReportBytes = 2 << 20
        /// A child's frames to the supervisor are a few dozen bytes.
        public var childMessageBytes = 4_096
    }

    public var queue = Queue()
    public var processors = Processors()
    public var supervision = Supervision()
    public var api = API()
    public var frames = Frames()
    public var maintenance = Maintenance()
    public var budgets = Budgets()
    public var tools = Tools()
    /// What each model costs and which parameters it takes: the shipped catalog with the
    /// operator's `--models` file on top.
    public var models = ModelCatalog.builtIn

    public init() {}

    /// Every key, with the range it must fall in and where its value lives.
    public enum Key: String, CaseIterable, Sendable {
        case queueLeaseSeconds = "queue.lease_seconds"
        case queueClaimPollMilliseconds = "queue.claim_poll_ms"
        case queueDemandPollMilliseconds = "queue.demand_poll_ms"
        case queueRescueIntervalMilliseconds = "queue.rescue_interval_ms"
        case queueCommitBatch = "queue.commit_batch"
        case queueClaimWindowMilliseconds = "queue.claim_window_ms"
        case queueCommitWindowMilliseconds = "queue.commit_window_ms"
        case queueConnections = "queue.connections"
        case queueMaxRetries = "queue.max_retries"
        case queueRetryDelayMilliseconds = "queue.retry_delay_ms"
        case queueRetryDelayMaxMilliseconds = "queue.retry_delay_max_ms"
        case queueAttemptDeadlineMilliseconds = "queue.attempt_deadline_ms"
        case processorsConcurrency = "processors.concurrency"
        case processorsIdleTimeoutMilliseconds = "processors.idle_timeout_ms"
        case processorsDrainTimeoutMilliseconds = "processors.drain_timeout_ms"
        case processorsProviderTimeoutMilliseconds = "processors.provider_timeout_ms"
        case processorsProviderRetries = "processors.provider_retries"
        case processorsProviderRetryWaitMaxMilliseconds = "processors.provider_retry_wait_max_ms"
        case supervisionHeartbeatIntervalMilliseconds = "supervision.heartbeat_interval_ms"
        case supervisionHeartbeatTimeoutMilliseconds = "supervision.heartbeat_timeout_ms"
        case supervisionKillGraceMilliseconds = "supervision.kill_grace_ms"
        case supervisionTenantPollMilliseconds = "supervision.tenant_poll_ms"
        case supervisionConnections = "supervision.connections"
        case apiConnections = "api.connections"
        case framesQueueMessageBytes = "frames.queue_message_bytes"
        case framesProcessorReportBytes = "frames.processor_report_bytes"
        case framesChildMessageBytes = "frames.child_message_bytes"
        case maintenanceIntervalMilliseconds = "maintenance.interval_ms"
        case maintenanceCleanupAfterDays = "maintenance.cleanup_after_days"
        case maintenanceRetryFailedTimes = "maintenance.retry_failed_times"
        case budgetsFieldLimitCents = "budgets.field_limit_cents"
        case toolsExecutors = "tools.executors"

        public var range: ClosedRange<Int> {
            switch self {
            case .queueLeaseSeconds: 10...86_400
            case .queueClaimPollMilliseconds, .queueDemandPollMilliseconds, .queueRescueIntervalMilliseconds: 50...600_000
            case .queueCommitBatch: 1...10_000
            case .queueClaimWindowMilliseconds, .queueCommitWindowMilliseconds: 0...100
            case .queueConnections: 2...16
            case .queueMaxRetries: 0...20
            case .queueRetryDelayMilliseconds: 0...86_400_000
            case .queueRetryDelayMaxMilliseconds: 0...86_400_000
            case .queueAttemptDeadlineMilliseconds: 1_000...86_400_000
            case .processorsProviderTimeoutMilliseconds: 100...3_600_000
            case .processorsProviderRetries: 0...10
            case .processorsProviderRetryWaitMaxMilliseconds: 0...600_000
            case .maintenanceIntervalMilliseconds: 0...604_800_000
            case .maintenanceCleanupAfterDays: 0...36_500
            case .maintenanceRetryFailedTimes: 0...100
            case .budgetsFieldLimitCents: 0...100_000_000
            case .toolsExecutors: 1...16
            case .processorsConcurrency: 1...1_024
            case .processorsIdleTimeoutMilliseconds: 100...86_400_000
            case .processorsDrainTimeoutMilliseconds: 0...3_600_000
            case .supervisionHeartbeatIntervalMilliseconds: 50...60_000
            case .supervisionHeartbeatTimeoutMilliseconds: 1_000...3_600_000
            case .supervisionKillGraceMilliseconds: 100...600_000
            case .supervisionTenantPollMilliseconds: 100...600_000
            case .supervisionConnections: 1...16
            case .apiConnections: 1...64
            case .framesQueueMessageBytes: (1 << 20)...(256 << 20)
            case .framesProcessorReportBytes: (64 << 10)...(4 << 20)
            case .framesChildMessageBytes: 1_024...65_536
            }
        }

        public var path: WritableKeyPath<EngineTunables, Int> {
            switch self {
            case .queueLeaseSeconds: \.queue.leaseSeconds
            case .queueClaimPollMilliseconds: \.queue.claimPollMilliseconds
            case .queueDemandPollMilliseconds: \.queue.demandPollMilliseconds
            case .queueRescueIntervalMilliseconds: \.queue.rescueIntervalMilliseconds
            case .queueCommitBatch: \.queue.commitBatch
            case .queueClaimWindowMilliseconds: \.queue.claimWindowMilliseconds
            case .queueCommitWindowMilliseconds: \.queue.commitWindowMilliseconds
            case .queueConnections: \.queue.connections
            case .queueMaxRetries: \.queue.maxRetries
            case .queueRetryDelayMilliseconds: \.queue.retryDelayMilliseconds
            case .queueRetryDelayMaxMilliseconds: \.queue.retryDelayMaxMilliseconds
            case .queueAttemptDeadlineMilliseconds: \.queue.attemptDeadlineMilliseconds
            case .processorsProviderTimeoutMilliseconds: \.processors.providerTimeoutMilliseconds
            case .processorsProviderRetries: \.processors.providerRetries
            case .processorsProviderRetryWaitMaxMilliseconds: \.processors.providerRetryWaitMaxMilliseconds
            case .maintenanceIntervalMilliseconds: \.maintenance.intervalMilliseconds
            case .maintenanceCleanupAfterDays: \.maintenance.cleanupAfterDays
            case .maintenanceRetryFailedTimes: \.maintenance.retryFailedTimes
            case .budgetsFieldLimitCents: \.budgets.fieldLimitCents
            case .toolsExecutors: \.tools.executors
            case .processorsConcurrency: \.processors.concurrency
            case .processorsIdleTimeoutMilliseconds: \.processors.idleTimeoutMilliseconds
            case .processorsDrainTimeoutMilliseconds: \.processors.drainTimeoutMilliseconds
            case .supervisionHeartbeatIntervalMilliseconds: \.supervision.heartbeatIntervalMilliseconds
            case .supervisionHeartbeatTimeoutMilliseconds: \.supervision.heartbeatTimeoutMilliseconds
            case .supervisionKillGraceMilliseconds: \.supervision.killGraceMilliseconds
            case .supervisionTenantPollMilliseconds: \.supervision.tenantPollMilliseconds
            case .supervisionConnections: \.supervision.connections
            case .apiConnections: \.api.connections
            case .framesQueueMessageBytes: \.frames.queueMessageBytes
            case .framesProcessorReportBytes: \.frames.processorReportBytes
            case .framesChildMessageBytes: \.frames.childMessageBytes
            }
        }
    }

    /// Sets `key`, refusing a value outside its range with the key and the range named.
    public mutating func set(_ key: Key, _ value: Int, from source: String) throws(ConfigurationError) {
        guard key.range.contains(value) else {
            throw ConfigurationError(key: "\(key.rawValue) (\(source))", problem: "is \(value); it must be \(key.range.lowerBound)...\(key.range.upperBound)")
        }
        self[keyPath: key.path] = value
    }

    /// Every value within its range, and the ones that depend on each other consistent.
    public func validate() throws(ConfigurationError) {
        for key in Key.allCases where !key.range.contains(self[keyPath: key.path]) {
            throw ConfigurationError(key: key.rawValue, problem: "is \(self[keyPath: key.path]); it must be \(key.range.lowerBound)...\(key.range.upperBound)")
        }
        guard self.supervision.heartbeatTimeoutMilliseconds >= self.supervision.heartbeatIntervalMilliseconds else {
            throw ConfigurationError(key: Key.supervisionHeartbeatTimeoutMilliseconds.rawValue, problem: "must be at least supervision.heartbeat_interval_ms")
        }
        guard self.queue.attemptDeadlineMilliseconds > self.processors.providerTimeoutMilliseconds else {
            // The deadline cancels what a timeout should have ended: it must come after it.
            throw ConfigurationError(key: Key.queueAttemptDeadlineMilliseconds.rawValue, problem: "must be longer than processors.provider_timeout_ms")
        }
    }
}

extension Duration {
    /// A tunable's milliseconds as a duration.
    public static func tunable(milliseconds: Int) -> Duration { .milliseconds(Int64(milliseconds)) }
}
