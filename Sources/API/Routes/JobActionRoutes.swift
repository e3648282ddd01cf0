import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// The job actions (`create` permission): retry, cancel, bulk retry, queue pending. Each state
/// change is one database function whose WHERE clause is the rule (`oneo_cancel_jobs`,
/// `oneo_requeue_jobs`, migration 0007), for the transaction's tenant only: a job in the wrong
/// state changes no row and answers 409 with the state it is in; another tenant's job is 404.
struct JobActionRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore
    /// Attempts a retried job gets (`queue.max_retries` + 1).
    let attempts: Int

    /// A bulk retry: `ids`, or a `filter` with the list's filters (status `failed` by default).
    struct BulkRetry: Decodable {
        let ids: [JobID]?
        let filter: JobRoutes.Filters?
    }

    /// The most jobs one bulk retry queues.
    static let bulkLimit = 10_000

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("ai-jobs/:job/retry") { _, context in
            let caller = try context.require(.create)
            let id = try JobRoutes.jobID(context)
            return try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                let rows = try await connection.query("SELECT o_id FROM oneo_requeue_jobs(\([id.rawValue]), \(self.attempts)::int)", logger: context.logger)
                var queued = false
                for try await _ in rows { queued = true }
                let job = try await JobRoutes.load(id, tenant: caller.tenant, on: connection, logger: context.logger)
                guard queued else {
                    if job.status == "failed" || job.status == "cancelled" {
                        throw APIError.conflict("job \(id) was not queued again: a newer job for field '\(job.field_name)' of this record is pending")
                    }
                    throw APIError.conflict("job \(id) is \(job.status); only failed or cancelled jobs can be retried")
                }
                return job
            }
        }
        group.post("ai-jobs/:job/cancel") { _, context in
            let caller = try context.require(.create)
            let id = try JobRoutes.jobID(context)
            return try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                let rows = try await connection.query("SELECT o_id FROM oneo_cancel_jobs(\([id.rawValue]))", logger: context.logger)
                var cancelled = false
                for try await _ in rows { cancelled = true }
                let job = try await JobRoutes.load(id, tenant: caller.tenant, on: connection, logger: context.logger)
                guard cancelled else { throw APIError.conflict("job \(id) is \(job.status); only pending or processing jobs can be cancelled") }
                return job
            }
        }
        group.post("ai-jobs/bulk_retry") { request, context in
            let caller = try context.require(.create)
            let body = try await request.decodeBody(BulkRetry.self, context: context)
            return try await self.bulkRetry(body, caller: caller, context: context)
        }
        group.post("ai-jobs/queue_pending") { _, context in
            let caller = try context.require(.create)
            // Pending jobs waiting out a retry delay run now; the queue manager is woken.
            let (queued, pending) = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> (Int, Int) in
                let rows = try await connection.query(
                    """
                    WITH due AS (
                        UPDATE ai_jobs SET run_at = now(), updated_at = now()
                        WHERE tenant_id = \(caller.tenant) AND status = 'pending' AND run_at > now()
                        RETURNING id)
                    SELECT (SELECT count(*) FROM due)::bigint,
                           (SELECT count(*) FROM ai_jobs WHERE tenant_id = \(caller.tenant) AND status = 'pending')::bigint,
                           pg_notify(\(JobChannel.jobsQueued), \(String(caller.tenant.rawValue)))::text
                    """,
                    logger: context.logger
                )
                for try await (queued, pending, _) in rows.decode((Int, Int, String).self) { return (queued, pending) }
                return (0, 0)
            }
            return BulkAnswer(queued: queued, matched: pending)
        }
    }

    struct BulkAnswer: ResponseEncodable {
        /// Jobs queued (again).
        let queued: Int
        /// Jobs the request named or its filter matched.
        let matched: Int
    }

    private func bulkRetry(_ body: BulkRetry, caller: Caller, context: APIRequestContext) async throws -> BulkAnswer {
        switch (body.ids, body.filter) {
        case (let ids?, nil):
            guard !ids.isEmpty, ids.count <= Self.bulkLimit else { throw APIError.invalid("ids must name 1...\(Self.bulkLimit) jobs") }
            return try await self.requeue(ids.map(\.rawValue), matched: Set(ids).count, caller: caller, context: context)
        case (nil, var filters?):
            if filters.status == nil { filters.status = JobStatus.failed.rawValue }
            try filters.check()
            guard filters.status == JobStatus.failed.rawValue || filters.status == JobStatus.cancelled.rawValue else {
                throw APIError.invalid("filter.status must be failed or cancelled: only ended jobs are retried")
            }
            var pipeline: PipelineID?
            if let reference = filters.pipeline {
                pipeline = try await self.pipelines.resolve(tenant: caller.tenant, reference, logger: context.logger).id
            }
            let ids = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> [Int64] in
                let rows = try await connection.query(
                    JobRoutes.matching(filters, tenant: caller.tenant, pipeline: pipeline, select: "id", tail: "ORDER BY id", limit: Self.bulkLimit, offset: 0),
                    logger: context.logger
                )
                var ids: [Int64] = []
                for try await id in rows.decode(Int64.self) { ids.append(id) }
                return ids
            }
            return try await self.requeue(ids, matched: ids.count, caller: caller, context: context)
        default:
            throw APIError.invalid("give either ids (a list of job ids) or filter (status, pipeline, record_id, field_name, job_type, error_code, created_after, created_before)")
        }
    }

    private func requeue(_ ids: [Int64], matched: Int, caller: Caller, context: APIRequestContext) async throws -> BulkAnswer {
        guard !ids.isEmpty else { return BulkAnswer(queued: 0, matched: 0) }
        let queued = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> Int in
            let rows = try await connection.query("SELECT o_id FROM oneo_requeue_jobs(\(ids), \(self.attempts)::int)", logger: context.logger)
            var count = 0
            for try await _ in rows { count += 1 }
            return count
        }
        return BulkAnswer(queued: queued, matched: matched)
    }
}
