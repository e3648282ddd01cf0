public import Foundation
public import Logging
public import OneoWire
public import PostgresNIO

/// The reference's `cleanup_old_jobs` and `retry_failed_jobs`: run by the queue manager on the
/// schedule in `maintenance.*`, and by the operator's `oneo-ai jobs cleanup|retry`. Both work in
/// bounded batches (no statement holds locks on millions of rows) and report progress.
public struct JobMaintenance: Sendable {
    public let database: PostgresClient

    public init(database: PostgresClient) {
        self.database = database
    }

    /// Which ended jobs `requeue` queues again.
    public struct Filter: Sendable {
        public var tenant: TenantID?
        /// `failed`, `cancelled`, or both.
        public var statuses: [JobStatus] = [.failed]
        /// Ended at or after / before.
        public var since: Date?
        public var until: Date?
        public var errorCode: String?
        public var pipeline: PipelineID?
        public var field: String?
        /// Only jobs whose last error was transient (what maintenance retries).
        public var onlyRetryable = false
        /// Only jobs queued again fewer times than this.
        public var requeuedFewerThan: Int?

        public init(tenant: TenantID? = nil, statuses: [JobStatus] = [.failed]) {
            self.tenant = tenant
            self.statuses = statuses
        }
    }

    /// Deletes jobs that ended (completed, failed, cancelled) more than `days` ago, with their
    /// attempt history; their usage rows stay (billing outlives the job). Returns how many.
    public func cleanup(olderThanDays days: Int, tenant: TenantID? = nil, batch: Int = 5_000, progress: (Int) -> Void = { _ in }, logger: Logger) async throws -> Int {
        var total = 0
        while true {
            let rows = try await self.database.query(
                """
                DELETE FROM ai_jobs WHERE id IN (
                    SELECT id FROM ai_jobs
                    WHERE status IN ('completed', 'failed', 'cancelled')
                      AND completed_at < now() - make_interval(days => \(days)::int)
                      AND (\(tenant)::bigint IS NULL OR tenant_id = \(tenant))
                    LIMIT \(batch)::int)
                RETURNING id
                """,
                logger: logger
            )
            var deleted = 0
            for try await _ in rows { deleted += 1 }
            total += deleted
            progress(total)
            if deleted < batch { return total }
        }
    }

    /// How many ended jobs match `filter` (what `requeue` would look at).
    public func count(matching filter: Filter, logger: Logger) async throws -> Int {
        let rows = try await self.database.query(
            Self.select("count(*)", matching: filter, limit: nil), logger: logger
        )
        var count = 0
        for try await value in rows.decode(Int.self) { count = value }
        return count
    }

    /// Queues the jobs matching `filter` again, each with `attempts` more attempts, through the
    /// same function as the API's retry (one rule). A job whose (record, field) has a newer
    /// pending job stays as it is. Returns how many were queued.
    public func requeue(matching filter: Filter, attempts: Int, limit: Int = 100_000, batch: Int = 1_000, progress: (Int, Int) -> Void = { _, _ in }, logger: Logger) async throws -> Int {
        let rows = try await self.database.query(
            Self.select("j.tenant_id, j.id", matching: filter, limit: limit),
            logger: logger
        )
        var byTenant: [TenantID: [Int64]] = [:]
        var seen = 0
        for try await (tenant, id) in rows.decode((TenantID, Int64).self) {
            byTenant[tenant, default: []].append(id)
            seen += 1
        }
        var queued = 0
        var done = 0
        for tenant in byTenant.keys.sorted(by: { $0.rawValue < $1.rawValue }) {
            let ids = byTenant[tenant]!
            var start = 0
            while start < ids.count {
                let chunk = Array(ids[start..<min(ids.count, start + batch)])
                do {
                    let result = try await self.database.query(
                        "SELECT o_id FROM oneo_requeue_jobs_of(\(tenant), \(chunk), \(attempts)::int)", logger: logger
                    )
                    for try await _ in result { queued += 1 }
                } catch {
                    // One tenant's failing chunk does not stop the others'.
                    logger.error("re-queueing a batch of jobs failed; it is tried again next run", metadata: [
                        "tenant.id": "\(tenant)", "jobs": "\(chunk.count)", "error": "\(SafeErrorDescription.of(error))",
                    ])
                }
                start += chunk.count
                done += chunk.count
                progress(done, seen)
            }
        }
        return queued
    }

    /// `SELECT columns` of the jobs matching the filter (ordered and limited when `limit` is
    /// set): every value bound, absent ones drop out. `columns` is constant SQL of ours.
    static func select(_ columns: String, matching filter: Filter, limit: Int?) -> PostgresQuery {
        let statuses = filter.statuses.filter { $0 == .failed || $0 == .cancelled }.map(\.rawValue)
        // `LIMIT NULL` is no limit: the count binds nil.
        let tail = limit == nil ? "LIMIT" : "ORDER BY j.tenant_id, j.id LIMIT"
        return """
            SELECT \(unescaped: columns) FROM ai_jobs j WHERE
            j.status = ANY(\(statuses))
              AND (\(filter.tenant)::bigint IS NULL OR j.tenant_id = \(filter.tenant))
              AND (\(filter.since)::timestamptz IS NULL OR coalesce(j.completed_at, j.updated_at) >= \(filter.since))
              AND (\(filter.until)::timestamptz IS NULL OR coalesce(j.completed_at, j.updated_at) < \(filter.until))
              AND (\(filter.errorCode)::text IS NULL OR j.error_code = \(filter.errorCode))
              AND (\(filter.pipeline)::bigint IS NULL OR j.pipeline_id = \(filter.pipeline))
              AND (\(filter.field)::text IS NULL OR j.field_name = \(filter.field))
              AND (NOT \(filter.onlyRetryable) OR j.error_retryable)
              AND (\(filter.requeuedFewerThan)::int IS NULL OR j.requeued_count < \(filter.requeuedFewerThan))
            \(unescaped: tail) \(limit)
            """
    }
}
