import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO
import Synchronization

/// `POST /api/v1/pipelines/{p}/records/{id}/generate/` `{"field": slug, "wait_ms": N}`: queues
/// that AI field of that record now (the reference's `process_field_ai`, and with `wait_ms` its
/// `process_field_sync`). Answers 200 with the finished job when it ends within `wait_ms`, else
/// 202 with the job as it stands: the caller polls `GET /ai-jobs/{id}/` from there.
struct GenerateRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore
    let maxAttempts: Int

    struct Body: Decodable {
        let field: String
        let wait_ms: Int?
    }

    /// The longest a request may wait for its job.
    static let longestWait = 30_000
    /// Requests of one tenant waiting at once; past it `wait_ms` is not honoured (202 at once).
    static let waitersPerTenant = 16
    let waiters = WaiterCounts()

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("pipelines/:pipeline/records/:record/generate") { request, context in
            let caller = try context.require(.create)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let recordText = try context.parameters.require("record")
            guard let recordID = RecordID(parsing: recordText) else { throw APIError.notFound("record '\(String(recordText.prefix(40)))'") }
            let body = try await request.decodeBody(Body.self, context: context)
            let wait = body.wait_ms ?? 0
            guard (0...Self.longestWait).contains(wait) else { throw APIError.invalid("wait_ms must be 0...\(Self.longestWait)") }
            let writer = RecordWriter(
                tenant: caller.tenant, defaultModel: caller.defaultModel, user: caller.tokenName,
                tenantSensitiveNames: caller.sensitiveNames, maxAttempts: self.maxAttempts
            )
            let jobID = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> JobID in
                let fields = try await writer.fields(pipeline.id, connection, context.logger)
                guard let field = fields.first(where: { $0.slug == body.field }) else {
                    throw APIError.invalid("field '\(String(body.field.prefix(64)))' is not a field of this pipeline")
                }
                guard field.isAIGenerated else { throw APIError.invalid("field '\(field.slug)' is not an ai_generated field") }
                let rows = try await connection.query(
                    """
                    SELECT id, data, version, created_at, updated_at FROM records
                    WHERE id = \(recordID) AND tenant_id = \(caller.tenant) AND pipeline_id = \(pipeline.id)
                    """,
                    logger: context.logger
                )
                let record = try await RecordWriter.single(rows, pipeline: pipeline.id)
                guard let queued = try await writer.queueJob(field: field, record: record, fields: fields, changed: [], on: connection, logger: context.logger),
                      let id = JobID(parsing: queued.job_id) else {
                    throw APIError.internalFailure("the job could not be queued")
                }
                return id
            }
            let job: JobResource
            if wait > 0, self.waiters.enter(caller.tenant, limit: Self.waitersPerTenant) {
                defer { self.waiters.leave(caller.tenant) }
                try await Self.waitForEnd(of: jobID, tenant: caller.tenant, within: .milliseconds(Int64(wait)), database: self.database, context: context)
            }
            job = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                try await JobRoutes.load(jobID, tenant: caller.tenant, on: connection, logger: context.logger)
            }
            return EditedResponse(status: JobStatus(rawValue: job.status)?.isFinal == true ? .ok : .accepted, response: job)
        }
    }

    /// Returns once the job is final or `within` has passed. Reads only the job's status, at
    /// growing intervals (10 ms up to 200 ms): a few reads for a fast job, five a second for a
    /// slow one; the caller loads the whole job once.
    static func waitForEnd(of id: JobID, tenant: TenantID, within: Duration, database: PostgresClient, context: APIRequestContext) async throws {
        let deadline = ContinuousClock.now + within
        var pause = Duration.milliseconds(10)
        while true {
            let status = try await database.asTenant(tenant, logger: context.logger) { connection -> String? in
                let rows = try await connection.query("SELECT status FROM ai_jobs WHERE id = \(id) AND tenant_id = \(tenant)", logger: context.logger)
                for try await status in rows.decode(String.self) { return status }
                return nil
            }
            let now = ContinuousClock.now
            if status.flatMap(JobStatus.init(rawValue:))?.isFinal ?? true || now >= deadline { return }
            try await Task.sleep(for: min(pause, deadline - now))
            pause = min(pause * 2, .milliseconds(200))
        }
    }
}

/// How many requests of each tenant wait for a job now.
final class WaiterCounts: Sendable {
    private let counts = Mutex<[TenantID: Int]>([:])

    /// Counts one more waiter unless the tenant already has `limit`.
    func enter(_ tenant: TenantID, limit: Int) -> Bool {
        self.counts.withLock { counts in
            guard counts[tenant, default: 0] < limit else { return false }
            counts[tenant, default: 0] += 1
            return true
        }
    }

    func leave(_ tenant: TenantID) {
        self.counts.withLock { counts in
            let left = counts[tenant, default: 1] - 1
            counts[tenant] = left > 0 ? left : nil
        }
    }
}
