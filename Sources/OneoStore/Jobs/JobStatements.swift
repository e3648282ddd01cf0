import OneoWire
import PostgresNIO

/// The queue manager's hot statements, prepared once per connection: the claim and the group
/// commit run for every batch, and re-planning their CTEs each time was a large share of
/// PostgreSQL's CPU per job. The SQL here is the whole rule of each step, as in `JobQueue`.
enum JobStatements {
    /// Claims, for each tenant in `$1`, up to its room in `$2` of its due jobs with their records.
    /// A (record, field) whose earlier job is still processing waits, so results land in the order
    /// of the changes; so does a job whose template names another AI field of the record with a
    /// job pending or processing (`depends_on`): it runs after it, on its fresh value.
    struct Claim: PostgresPreparedStatement {
        static let sql = """
            WITH wanted AS (
                SELECT * FROM unnest($1::bigint[], $2::bigint[]) AS w(tenant_id, room)),
            picked AS (
                SELECT c.id FROM wanted w CROSS JOIN LATERAL (
                    SELECT c.id FROM ai_jobs c
                    WHERE c.tenant_id = w.tenant_id AND c.status = 'pending' AND c.run_at <= now()
                      AND (c.field_version_id IS NOT NULL OR c.workflow IS NOT NULL)
                      AND NOT EXISTS (
                          SELECT 1 FROM ai_jobs p
                          WHERE p.tenant_id = c.tenant_id AND p.record_id = c.record_id
                            AND p.field_name = c.field_name AND p.status = 'processing')
                      AND (cardinality(c.depends_on) = 0 OR NOT EXISTS (
                          SELECT 1 FROM ai_jobs d
                          WHERE d.tenant_id = c.tenant_id AND d.record_id = c.record_id
                            AND d.field_name = ANY (c.depends_on) AND d.status IN ('pending', 'processing')
                            -- Jobs queued before a prompt edit could wait on each other forever.
                            AND NOT (c.field_name = ANY (d.depends_on))))
                    ORDER BY c.run_at, c.id
                    LIMIT w.room
                    FOR UPDATE SKIP LOCKED) c),
            claimed AS (
                UPDATE ai_jobs SET status = 'processing', attempt = attempt + 1, locked_by = $3,
                                   lease_until = now() + make_interval(secs => $4),
                                   started_at = now(), updated_at = now(), reserved_micros = 0, reserved_periods = '{}'
                WHERE id IN (SELECT id FROM picked)
                RETURNING tenant_id, id, pipeline_id, record_id, field_name, model_name, field_version_id, attempt, max_attempts, triggered_by,
                          job_type, workflow)
            -- A workflow node's job has no record or pipeline (0 stands for them) and brings its
            -- own config; a job whose config is gone gets null, which fails it as invalid.
            SELECT c.tenant_id, c.id, coalesce(c.pipeline_id, 0), coalesce(c.record_id, 0), c.field_name, c.model_name,
                   coalesce(v.ai_config, c.workflow -> 'config', 'null'::jsonb), c.attempt, c.max_attempts, c.triggered_by,
                   CASE WHEN c.workflow IS NULL THEN r.data ELSE '{}'::jsonb END, coalesce(p.name, ''), coalesce(p.fields_version, 0),
                   t.sensitive_fields, t.monthly_budget_micros, c.job_type, c.workflow ->> 'execution_id', c.workflow -> 'context', t.tools_enabled
            FROM claimed c
            LEFT JOIN field_versions v ON v.id = c.field_version_id AND v.tenant_id = c.tenant_id
            LEFT JOIN pipelines p ON p.id = c.pipeline_id AND p.tenant_id = c.tenant_id
            JOIN tenants t ON t.id = c.tenant_id
            LEFT JOIN records r ON r.id = c.record_id AND r.tenant_id = c.tenant_id
            """
        typealias Row = ClaimedJob

        let tenants: [Int64]
        let rooms: [Int64]
        let worker: String
        let leaseSeconds: Int

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 4)
            bindings.append(self.tenants)
            bindings.append(self.rooms)
            bindings.append(self.worker)
            bindings.append(Double(self.leaseSeconds))
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> ClaimedJob {
            let (tenant, id, pipeline, record, field, model, config, attempt, maxAttempts, triggeredBy, data, pipelineName, fieldsVersion, sensitive, budget,
                 jobType, executionID, context, toolsEnabled) =
                try row.decode((TenantID, JobID, PipelineID, RecordID, String, String, JSONValue, Int, Int, String?, JSONValue?, String, Int64, [String], Microdollars?,
                                String, String?, JSONValue?, Bool).self)
            return ClaimedJob(
                tenant: tenant, id: id, pipeline: pipeline, record: record, fieldName: field, model: model,
                storedConfig: config, attempt: attempt, maxAttempts: maxAttempts, triggeredBy: triggeredBy,
                recordData: data.map { $0.objectValue ?? [:] }, pipelineName: pipelineName, fieldsVersion: fieldsVersion,
                tenantSensitiveNames: sensitive, tenantMonthlyBudget: budget,
                workflow: executionID.map { WorkflowNode(executionID: $0, jobType: jobType, context: context ?? [:]) },
                tenantToolsEnabled: toolsEnabled
            )
        }
    }

    /// Commits finished jobs of any tenants in one statement. Each is fenced by (tenant, job,
    /// attempt, worker): only those whose rows still match write their record field and usage,
    /// and settle their reservations at their real cost. A workflow node's result stays on its job.
    struct Complete: PostgresPreparedStatement {
        static let sql = """
            WITH input AS (
                SELECT * FROM jsonb_to_recordset($1) AS i(
                    tenant_id bigint, job_id bigint, attempt int, record_id bigint, pipeline_id bigint, field_name text, model text,
                    user_name text, operation text, output jsonb, value jsonb, audit jsonb, prompt_tokens int, cached_tokens int, completion_tokens int,
                    cost_micros bigint, ms int, cache_hit boolean, tool_calls jsonb, artifacts jsonb)),
            done AS (
                UPDATE ai_jobs j SET status = 'completed', output_data = i.output, prompt_audit = i.audit,
                       tokens_used = i.prompt_tokens + i.completion_tokens, prompt_tokens = i.prompt_tokens, cached_tokens = i.cached_tokens,
                       completion_tokens = i.completion_tokens, cost_micros = i.cost_micros, processing_time_ms = i.ms, cache_hit = i.cache_hit,
                       tool_calls = i.tool_calls,
                       error_code = NULL, error_message = '', lease_until = NULL,
                       completed_at = clock_timestamp(), updated_at = now()
                FROM input i
                WHERE j.id = i.job_id AND j.tenant_id = i.tenant_id AND j.status = 'processing'
                  AND j.attempt = i.attempt AND j.locked_by = $2
                RETURNING i.*, j.reserved_micros, j.reserved_periods, i.cost_micros AS charge_micros),
            \(JobQueue.settle(from: "done")),
            written AS (
                -- One update per record: two fields of one record may finish in the same batch.
                UPDATE records r SET data = r.data || w.fields, version = r.version + 1, updated_at = now()
                FROM (SELECT tenant_id, record_id, jsonb_object_agg(field_name, value) AS fields
                      FROM done WHERE record_id IS NOT NULL GROUP BY tenant_id, record_id) w
                WHERE r.id = w.record_id AND r.tenant_id = w.tenant_id),
            kept AS (
                -- The files the job's tools made, for the API to serve (the attempt's, fenced as above).
                INSERT INTO ai_job_artifacts (tenant_id, job_id, name, media_type, bytes)
                SELECT d.tenant_id, d.job_id, a.name, a.media_type, decode(a.data, 'base64')
                FROM done d CROSS JOIN LATERAL jsonb_to_recordset(coalesce(d.artifacts, '[]'::jsonb)) AS a(name text, media_type text, data text)
                ON CONFLICT (job_id, name) DO UPDATE SET media_type = EXCLUDED.media_type, bytes = EXCLUDED.bytes, created_at = now()),
            charged AS (
                INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type,
                                      tokens_used, prompt_tokens, cached_tokens, completion_tokens, cost_micros, response_time_ms,
                                      pipeline_id, record_id, field_name, cache_hit)
                SELECT tenant_id, job_id, attempt, user_name, 'openai', model, operation,
                       prompt_tokens + completion_tokens, prompt_tokens, cached_tokens, completion_tokens, cost_micros, ms,
                       pipeline_id, record_id, field_name, cache_hit
                FROM done)
            SELECT job_id FROM done
            """
        typealias Row = Int64

        let rows: JSONValue
        let worker: String

        func makeBindings() throws -> PostgresBindings {
            var bindings = PostgresBindings(capacity: 2)
            try bindings.append(self.rows)
            bindings.append(self.worker)
            return bindings
        }

        func decodeRow(_ row: PostgresRow) throws -> Int64 {
            try row.decode(Int64.self)
        }
    }
}
