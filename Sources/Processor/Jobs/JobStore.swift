import Foundation
public import Logging
public import OneoCore
public import PostgresNIO

/// Every SQL statement of a job's life in the processor. Each state change is one statement or one
/// transaction whose WHERE clause enforces the rule (status, attempt, worker), so a stale worker's
/// write matches no row.
public struct JobStore: Sendable {
    public let database: PostgresClient
    public let tenant: TenantID
    public let worker: String
    public let leaseSeconds: Int

    public init(database: PostgresClient, tenant: TenantID, worker: String, leaseSeconds: Int) {
        self.database = database
        self.tenant = tenant
        self.worker = worker
        self.leaseSeconds = leaseSeconds
    }

    /// Claims up to `limit` due jobs, with their records, in one statement. A (record, field)
    /// whose earlier job is still processing waits, so results land in the order of the changes.
    public func claim(limit: Int, logger: Logger) async throws -> [ClaimedJob] {
        var jobs: [ClaimedJob] = []
        let statement = JobStatements.Claim(worker: self.worker, leaseSeconds: self.leaseSeconds, tenant: self.tenant, limit: limit)
        for try await job in try await self.database.execute(statement, logger: logger) { jobs.append(job) }
        return jobs
    }

    /// A pipeline's fields in order, with the version they were read at.
    public func fields(of pipeline: PipelineID, logger: Logger) async throws -> (version: Int64, fields: [PipelineField]) {
        try await self.database.withTransaction(logger: logger) { connection in
            var version: Int64 = 0
            let versions = try await connection.query(
                "SELECT fields_version FROM pipelines WHERE id = \(pipeline) AND tenant_id = \(self.tenant)", logger: logger
            )
            for try await value in versions.decode(Int64.self) { version = value }
            let rows = try await connection.query(
                """
                SELECT id, slug, name, field_type, position, ai_config FROM fields
                WHERE tenant_id = \(self.tenant) AND pipeline_id = \(pipeline) ORDER BY position, id
                """,
                logger: logger
            )
            var fields: [PipelineField] = []
            for try await (id, slug, name, type, position, config) in rows.decode((FieldID, String, String, String, Int, JSONValue?).self) {
                fields.append(PipelineField(
                    id: id, slug: slug, name: name, type: FieldType(rawValue: type) ?? .text, position: position,
                    aiConfig: try config.map { value throws -> AIFieldConfig in try AIFieldConfig(validating: value, stored: true) }
                ))
            }
            return (version, fields)
        }
    }

    /// Commits finished jobs together: one statement, one transaction, one fsync for the batch.
    /// Each job is fenced by (job, attempt, worker) in SQL: only the jobs whose rows still match
    /// write their record field and their usage row. Returns, per job, whether it was committed.
    public func complete(_ batch: [(job: ClaimedJob, result: JobResult)], logger: Logger) async throws -> [Bool] {
        let rows: JSONValue = .array(batch.map { job, result in
            [
                "job_id": .integer(job.id.rawValue), "attempt": .integer(Int64(job.attempt)),
                "record_id": .integer(job.record.rawValue), "pipeline_id": .integer(job.pipeline.rawValue),
                "field_name": .string(job.fieldName), "model": .string(job.model),
                "user_name": job.triggeredBy.map(JSONValue.string) ?? .null,
                "output": result.output, "value": result.value, "audit": result.audit,
                "prompt_tokens": .integer(Int64(result.promptTokens)), "completion_tokens": .integer(Int64(result.completionTokens)),
                "cost_micros": .integer(result.cost.rawValue), "ms": .integer(Int64(result.processingMilliseconds)),
            ]
        })
        let committed = try await self.database.execute(JobStatements.Complete(rows: rows, tenant: self.tenant, worker: self.worker), logger: logger)
        var held = Set<Int64>()
        for try await id in committed { held.insert(id) }
        return batch.map { held.contains($0.job.id.rawValue) }
    }

    /// Ends an attempt that did not complete. A retryable failure goes back to `pending` after
    /// `delay` while attempts remain; a newer pending job for the same field supersedes it.
    public func fail(_ job: ClaimedJob, code: String, message: String, retryAfter delay: Duration?, logger: Logger) async throws {
        let retry = delay != nil
        let seconds = delay.map { Double($0.components.seconds) + Double($0.components.attoseconds) / 1e18 } ?? 0
        try await self.database.query(
            """
            UPDATE ai_jobs j SET
                status = CASE
                    WHEN EXISTS (SELECT 1 FROM ai_jobs p WHERE p.tenant_id = j.tenant_id AND p.record_id = j.record_id
                                 AND p.field_name = j.field_name AND p.status = 'pending') THEN 'cancelled'
                    WHEN \(retry) AND j.attempt < j.max_attempts THEN 'pending'
                    ELSE 'failed' END,
                retry_count = j.retry_count + CASE WHEN \(retry) AND j.attempt < j.max_attempts THEN 1 ELSE 0 END,
                run_at = now() + make_interval(secs => \(seconds)),
                error_code = \(code), error_message = \(message), lease_until = NULL, locked_by = NULL,
                completed_at = CASE WHEN \(retry) AND j.attempt < j.max_attempts THEN NULL ELSE now() END,
                updated_at = now()
            WHERE j.id = \(job.id) AND j.tenant_id = \(self.tenant) AND j.status = 'processing'
              AND j.attempt = \(job.attempt) AND j.locked_by = \(self.worker)
            """,
            logger: logger
        )
    }

    /// Returns jobs whose lease expired (their processor died) to `pending`, or `failed` after
    /// their last attempt. Returns how many it rescued.
    @discardableResult
    public func rescueExpiredLeases(logger: Logger) async throws -> Int {
        try await JobLeases.release(.expired, tenant: self.tenant, database: self.database, logger: logger)
    }

    /// Returns the jobs this worker still holds to the queue: its drain deadline passed.
    @discardableResult
    public func releaseHeldJobs(logger: Logger) async throws -> Int {
        try await JobLeases.release(.worker(self.worker), tenant: self.tenant, database: self.database, logger: logger)
    }
}

/// A completed provider call, ready to be committed.
public struct JobResult: Sendable {
    public let value: JSONValue
    public let output: JSONValue
    /// The prompt's guard audit: counts and field names, never values.
    public let audit: JSONValue
    public let promptTokens: Int
    public let completionTokens: Int
    public let cost: Microdollars
    public let processingMilliseconds: Int
}
