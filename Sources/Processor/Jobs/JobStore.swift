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
                "output": result.output, "value": result.value,
                "prompt_tokens": .integer(Int64(result.promptTokens)), "completion_tokens": .integer(Int64(result.completionTokens)),
                "cost_micros": .integer(result.cost.rawValue), "ms": .integer(Int64(result.processingMilliseconds)),
            ]
        })
        let committed = try await self.database.query(
            """
            WITH input AS (
                SELECT * FROM jsonb_to_recordset(\(rows)) AS i(
                    job_id bigint, attempt int, record_id bigint, pipeline_id bigint, field_name text, model text,
                    user_name text, output jsonb, value jsonb, prompt_tokens int, completion_tokens int,
                    cost_micros bigint, ms int)),
            done AS (
                UPDATE ai_jobs j SET status = 'completed', output_data = i.output,
                       tokens_used = i.prompt_tokens + i.completion_tokens, prompt_tokens = i.prompt_tokens,
                       completion_tokens = i.completion_tokens, cost_micros = i.cost_micros, processing_time_ms = i.ms,
                       error_code = NULL, error_message = '', lease_until = NULL,
                       completed_at = clock_timestamp(), updated_at = now()
                FROM input i
                WHERE j.id = i.job_id AND j.tenant_id = \(self.tenant) AND j.status = 'processing'
                  AND j.attempt = i.attempt AND j.locked_by = \(self.worker)
                RETURNING i.*),
            written AS (
                -- One update per record: two fields of one record may finish in the same batch.
                UPDATE records r SET data = r.data || w.fields, version = r.version + 1, updated_at = now()
                FROM (SELECT record_id, jsonb_object_agg(field_name, value) AS fields FROM done GROUP BY record_id) w
                WHERE r.id = w.record_id AND r.tenant_id = \(self.tenant)),
            charged AS (
                INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type,
                                      tokens_used, prompt_tokens, completion_tokens, cost_micros, response_time_ms,
                                      pipeline_id, record_id)
                SELECT \(self.tenant), job_id, attempt, user_name, 'openai', model, 'field_generation',
                       prompt_tokens + completion_tokens, prompt_tokens, completion_tokens, cost_micros, ms,
                       pipeline_id, record_id
                FROM done)
            SELECT job_id FROM done
            """,
            logger: logger
        )
        var held = Set<Int64>()
        for try await id in committed.decode(Int64.self) { held.insert(id) }
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
