import Foundation
import Hummingbird
public import OneoWire
import OneoRedis
import OneoStore
import OneoCore
import NIOPosix
import PostgresNIO
import Logging

/// Where the API learns how a tenant's processor is: the supervisor, over the API's own socket
/// to it (a question with a request id; the answer names that tenant's processor alone).
public protocol ProcessorHealthSource: Sendable {
    func health(of tenant: TenantID) async throws -> ProcessorHealth?
}

/// For an API with no supervisor (the in-process tests): no processor is known.
public struct NoProcessorHealth: ProcessorHealthSource {
    public init() {}
    public func health(of tenant: TenantID) async throws -> ProcessorHealth? { nil }
}

extension SupervisorLink: ProcessorHealthSource {
    public func health(of tenant: TenantID) async throws -> ProcessorHealth? {
        try await self.health(of: tenant, timeout: .seconds(2))
    }
}

/// `GET /ai-jobs/worker_health/` and `GET /ai-jobs/diagnostics/` (`read`): the caller's own
/// tenant's processor, queue and failures, and whether the database and Redis answer.
struct JobHealthRoutes {
    let database: PostgresClient
    let health: any ProcessorHealthSource
    let redis: RedisSettings?
    /// Each answer is kept a little while: a tenant polling hard costs the database and the
    /// supervisor one query per tenant per interval, and Redis one PING for everyone.
    private let diagnosticsCache = ShortLivedCache<DiagnosticsKey, Diagnostics>(lifetime: .seconds(5))
    private let gate: TenantQueryGate

    struct DiagnosticsKey: Hashable, Sendable {
        let tenant: TenantID
        let window: Int
    }
    private let healthCache = ShortLivedCache<TenantID, ProcessorHealth?>(lifetime: .seconds(1))
    private let redisCache = ShortLivedCache<Int, Diagnostics.Check>(lifetime: .seconds(5), capacity: 1)

    init(database: PostgresClient, health: any ProcessorHealthSource, redis: RedisSettings?) {
        self.database = database
        self.health = health
        self.redis = redis
        self.gate = TenantQueryGate(database: database, perTenant: 1)
    }

    struct WorkerHealth: ResponseEncodable {
        /// healthy (running and heard from lately), degraded (starting, draining, silent for a
        /// while, restarting), stopped (idle or held; started again when work arrives), unknown.
        let status: String
        let processor: ProcessorHealth?
        /// Jobs waiting for it now.
        let pending_jobs: Int
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.get("ai-jobs/worker_health") { _, context in
            let caller = try context.require(.read)
            let processor = await self.processorHealth(of: caller.tenant)
            let pending = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> Int in
                let rows = try await connection.query(
                    "SELECT count(*)::bigint FROM ai_jobs WHERE tenant_id = \(caller.tenant) AND status = 'pending'", logger: context.logger
                )
                for try await count in rows.decode(Int.self) { return count }
                return 0
            }
            let status: String = switch processor?.state {
            case "running"?: (processor?.lastHeartbeatSecondsAgo ?? 0) < 5 ? "healthy" : "degraded"
            case "stopped"?: "stopped"
            case nil: "unknown"
            default: "degraded"
            }
            return WorkerHealth(status: status, processor: processor, pending_jobs: pending)
        }
        group.get("ai-jobs/diagnostics") { request, context in
            let caller = try context.require(.read)
            let window = try request.queryInteger("window_minutes", default: 60, range: 1...10_080)
            let key = DiagnosticsKey(tenant: caller.tenant, window: window)
            if let cached = self.diagnosticsCache.value(for: key) { return cached }
            let fresh = try await self.diagnostics(caller.tenant, windowMinutes: window, context: context)
            self.diagnosticsCache.store(fresh, for: key)
            return fresh
        }
    }

    struct Diagnostics: ResponseEncodable {
        struct Queue: Encodable {
            let by_status: [String: Int]
            /// Age of the oldest pending job, in seconds (nil: none pending).
            let oldest_pending_seconds: Double?
            /// Pending jobs whose time has come (the rest wait out a retry delay).
            let due: Int
        }

        struct Failures: Encodable {
            let window_minutes: Int
            /// Attempts that ended with an error in the window, by error code.
            let by_error_code: [String: Int]
            let failed_attempts: Int
            let completed_jobs: Int
            /// failed attempts ÷ (failed attempts + completed jobs), 0 with neither.
            let failure_rate: Double
        }

        struct Check: Encodable {
            let ok: Bool
            let latency_ms: Double?
            let error: String?
        }

        struct Provider: Encodable {
            /// The provider as the tenant's real calls found it (no call is made for this):
            /// the processor's newest call (`reachable`: it got any HTTP answer; its latency and
            /// age), and from the jobs, the newest completed one and the newest provider error.
            let reachable: Bool?
            let latency_ms: Int?
            let checked_seconds_ago: Double?
            let last_success_at: Date?
            let last_success_ms: Int?
            /// The newest provider error, if later than the newest success.
            let last_error_code: String?
            let last_error_at: Date?
        }

        let queue: Queue
        let failures: Failures
        let database: Check
        let redis: Check
        let provider: Provider
    }

    /// The supervisor's answer for this tenant's processor, kept a second.
    private func processorHealth(of tenant: TenantID) async -> ProcessorHealth? {
        if let cached = self.healthCache.value(for: tenant) { return cached }
        let fresh = try? await self.health.health(of: tenant)
        self.healthCache.store(fresh, for: tenant)
        return fresh
    }

    private func diagnostics(_ tenant: TenantID, windowMinutes: Int, context: APIRequestContext) async throws -> Diagnostics {
        let started = ContinuousClock.now
        let (queue, failures, history) = try await self.gate.run(tenant, context) { connection in
            var byStatus = Dictionary(uniqueKeysWithValues: JobStatus.allCases.map { ($0.rawValue, 0) })
            var oldest: Double?
            var due = 0
            let statuses = try await connection.query(
                """
                SELECT status, count(*)::bigint, extract(epoch FROM now() - min(created_at))::float8,
                       count(*) FILTER (WHERE run_at <= now())::bigint
                FROM ai_jobs WHERE tenant_id = \(tenant) GROUP BY status
                """,
                logger: context.logger
            )
            for try await (status, count, age, dueCount) in statuses.decode((String, Int, Double?, Int).self) {
                byStatus[status] = count
                if status == JobStatus.pending.rawValue { oldest = age; due = dueCount }
            }
            var byCode: [String: Int] = [:]
            let codes = try await connection.query(
                """
                SELECT error_code, count(*)::bigint FROM ai_job_attempts
                WHERE tenant_id = \(tenant) AND ended_at > now() - make_interval(mins => \(windowMinutes)::int) AND outcome <> 'cancelled'
                GROUP BY error_code
                """,
                logger: context.logger
            )
            for try await (code, count) in codes.decode((String, Int).self) { byCode[code] = count }
            var completed = 0
            var lastSuccess: (Date, Int)?
            let done = try await connection.query(
                """
                SELECT count(*) FILTER (WHERE completed_at > now() - make_interval(mins => \(windowMinutes)::int))::bigint,
                       max(completed_at),
                       (SELECT processing_time_ms FROM ai_jobs WHERE tenant_id = \(tenant) AND status = 'completed' ORDER BY completed_at DESC NULLS LAST LIMIT 1)
                FROM ai_jobs WHERE tenant_id = \(tenant) AND status = 'completed'
                """,
                logger: context.logger
            )
            for try await (count, at, ms) in done.decode((Int, Date?, Int?).self) {
                completed = count
                if let at, let ms { lastSuccess = (at, ms) }
            }
            var lastError: (String, Date)?
            let errors = try await connection.query(
                """
                SELECT error_code, ended_at FROM ai_job_attempts
                WHERE tenant_id = \(tenant) AND (error_code LIKE 'provider%' OR error_code = 'insufficient_quota')
                ORDER BY ended_at DESC LIMIT 1
                """,
                logger: context.logger
            )
            for try await (code, at) in errors.decode((String, Date).self) { lastError = (code, at) }
            if let error = lastError, let success = lastSuccess, error.1 < success.0 { lastError = nil }
            let failed = byCode.values.reduce(0, +)
            return (
                Diagnostics.Queue(by_status: byStatus, oldest_pending_seconds: oldest, due: due),
                Diagnostics.Failures(
                    window_minutes: windowMinutes, by_error_code: byCode, failed_attempts: failed, completed_jobs: completed,
                    failure_rate: Ratio.of(failed, failed + completed)
                ),
                (lastSuccess, lastError)
            )
        }
        let databaseMilliseconds = Double((ContinuousClock.now - started) / .microseconds(10)) / 100
        let call = await self.processorHealth(of: tenant)?.providerCall
        let provider = Diagnostics.Provider(
            reachable: call?.reachable, latency_ms: call?.latencyMilliseconds, checked_seconds_ago: call.map { Double($0.ageMilliseconds) / 1_000 },
            last_success_at: history.0?.0, last_success_ms: history.0?.1, last_error_code: history.1?.0, last_error_at: history.1?.1
        )
        return Diagnostics(
            queue: queue, failures: failures,
            database: .init(ok: true, latency_ms: databaseMilliseconds, error: nil),
            redis: await self.pingRedis(logger: context.logger),
            provider: provider
        )
    }

    /// One PING on a fresh connection, on the blocking pool (hiredis blocks), 1 s at most; at
    /// most one every 5 s for all tenants. The error is a fixed text: where Redis is (an address,
    /// a path) is the operator's business, logged here, not a tenant's.
    private func pingRedis(logger: Logger) async -> Diagnostics.Check {
        if let cached = self.redisCache.value(for: 0) { return cached }
        let check: Diagnostics.Check
        if let settings = self.redis {
            let started = ContinuousClock.now
            do {
                try await NIOThreadPool.singleton.runIfActive {
                    let connection = try RedisConnection(settings, timeoutMilliseconds: 1_000)
                    try connection.ping()
                }
                check = .init(ok: true, latency_ms: Double((ContinuousClock.now - started) / .microseconds(10)) / 100, error: nil)
            } catch {
                logger.warning("diagnostics: Redis did not answer", metadata: ["error": "\(SafeErrorDescription.of(error))"])
                check = .init(ok: false, latency_ms: nil, error: "unreachable")
            }
        } else {
            check = .init(ok: false, latency_ms: nil, error: "not configured")
        }
        self.redisCache.store(check, for: 0)
        return check
    }
}
