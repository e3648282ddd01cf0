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
        let rows = try await self.database.query(
            """
            WITH claimed AS (
                UPDATE ai_jobs SET status = 'processing', attempt = attempt + 1, locked_by = \(self.worker),
                                   lease_until = now() + make_interval(secs => \(self.leaseSeconds)),
                                   started_at = now(), updated_at = now()
                WHERE id IN (
                    SELECT c.id FROM ai_jobs c
                    WHERE c.tenant_id = \(self.tenant) AND c.status = 'pending' AND c.run_at <= now()
                      AND NOT EXISTS (
                          SELECT 1 FROM ai_jobs p
                          WHERE p.tenant_id = c.tenant_id AND p.pipeline_id = c.pipeline_id AND p.record_id = c.record_id
                            AND p.field_name = c.field_name AND p.status = 'processing')
                    ORDER BY c.run_at, c.id
                    LIMIT \(limit)
                    FOR UPDATE SKIP LOCKED)
                RETURNING id, pipeline_id, record_id, field_name, model_name, ai_config, attempt, max_attempts, triggered_by)
            SELECT c.id, c.pipeline_id, c.record_id, c.field_name, c.model_name, c.ai_config, c.attempt, c.max_attempts,
                   c.triggered_by, r.data, p.name, p.fields_version
            FROM claimed c
            JOIN pipelines p ON p.id = c.pipeline_id AND p.tenant_id = \(self.tenant)
            LEFT JOIN records r ON r.id = c.record_id AND r.tenant_id = \(self.tenant)
            """,
            logger: logger
        )
        var jobs: [ClaimedJob] = []
        for try await row in rows {
            let (id, pipeline, record, field, model, config, attempt, maxAttempts, triggeredBy, data, pipelineName, fieldsVersion) =
                try row.decode((JobID, PipelineID, RecordID, String, String, JSONValue, Int, Int, String?, JSONValue?, String, Int64).self)
            jobs.append(ClaimedJob(
                id: id, pipeline: pipeline, record: record, fieldName: field, model: model,
                config: try AIFieldConfig(validating: config), attempt: attempt, maxAttempts: maxAttempts, triggeredBy: triggeredBy,
                recordData: data.map { $0.objectValue ?? [:] }, pipelineName: pipelineName, fieldsVersion: fieldsVersion
            ))
        }
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
                    aiConfig: try config.map { value throws -> AIFieldConfig in try AIFieldConfig(validating: value) }
                ))
            }
            return (version, fields)
        }
    }

    /// Commits finished jobs together in one transaction (one fsync for the batch). Each job is one
    /// statement fenced by (job, attempt, worker): only if its job row still matches does it write
    /// the record's field and its usage row. Returns, per job, whether it was committed.
    public func complete(_ batch: [(job: ClaimedJob, result: JobResult)], logger: Logger) async throws -> [Bool] {
        try await self.database.withTransaction(logger: logger) { connection in
            var committed: [Bool] = []
            for (job, result) in batch {
                let tokens = result.promptTokens + result.completionTokens
                let rows = try await connection.query(
                    """
                    WITH done AS (
                        UPDATE ai_jobs SET status = 'completed', output_data = \(result.output), tokens_used = \(tokens),
                               prompt_tokens = \(result.promptTokens), completion_tokens = \(result.completionTokens),
                               cost_micros = \(result.cost), processing_time_ms = \(result.processingMilliseconds),
                               error_code = NULL, error_message = '', lease_until = NULL, completed_at = clock_timestamp(), updated_at = now()
                        WHERE id = \(job.id) AND tenant_id = \(self.tenant) AND status = 'processing'
                          AND attempt = \(job.attempt) AND locked_by = \(self.worker)
                        RETURNING id),
                    written AS (
                        UPDATE records SET data = jsonb_set(data, ARRAY[\(job.fieldName)]::text[], \(result.value)),
                                           version = version + 1, updated_at = now()
                        WHERE id = \(job.record) AND tenant_id = \(self.tenant) AND EXISTS (SELECT 1 FROM done)),
                    charged AS (
                        INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type,
                                              tokens_used, prompt_tokens, completion_tokens, cost_micros, response_time_ms,
                                              pipeline_id, record_id)
                        SELECT \(self.tenant), done.id, \(job.attempt), \(job.triggeredBy), 'openai', \(job.model), 'field_generation',
                               \(tokens), \(result.promptTokens), \(result.completionTokens), \(result.cost),
                               \(result.processingMilliseconds), \(job.pipeline), \(job.record)
                        FROM done)
                    SELECT count(*) FROM done
                    """,
                    logger: logger
                )
                var held = false
                for try await count in rows.decode(Int.self) { held = count == 1 }
                committed.append(held)
            }
            return committed
        }
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
        let rows = try await self.database.query(
            """
            UPDATE ai_jobs j SET
                status = CASE
                    WHEN EXISTS (SELECT 1 FROM ai_jobs p WHERE p.tenant_id = j.tenant_id AND p.record_id = j.record_id
                                 AND p.field_name = j.field_name AND p.status = 'pending') THEN 'cancelled'
                    WHEN j.attempt < j.max_attempts THEN 'pending'
                    ELSE 'failed' END,
                retry_count = j.retry_count + CASE WHEN j.attempt < j.max_attempts THEN 1 ELSE 0 END,
                error_code = 'lease_expired', error_message = 'the processor holding this job stopped before finishing it',
                lease_until = NULL, locked_by = NULL, run_at = now(), updated_at = now()
            WHERE j.tenant_id = \(self.tenant) AND j.status = 'processing' AND j.lease_until < now()
            RETURNING j.id
            """,
            logger: logger
        )
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }
}

/// A completed provider call, ready to be committed.
public struct JobResult: Sendable {
    public let value: JSONValue
    public let output: JSONValue
    public let promptTokens: Int
    public let completionTokens: Int
    public let cost: Microdollars
    public let processingMilliseconds: Int
}
