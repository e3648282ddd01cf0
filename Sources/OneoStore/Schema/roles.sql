-- The engine's database roles, applied by the supervisor at every start (and by `migrate`),
-- idempotently. Names and passwords arrive as settings bound by the caller (oneo.api_role,
-- oneo.qmgr_role, oneo.api_password, oneo.qmgr_password) and are quoted by format(): nothing
-- here is built from text. What each role may do is the whole of this file:
--
--   api   the tenant-facing tables under row-level security (one tenant per transaction);
--         tenants' public columns of its own row; never sealed keys, never token hashes.
--   qmgr  jobs, usage, the record columns results go to, and what a job is rendered from,
--         across tenants; never sealed keys, never tokens, never pipelines' or fields' writes.
--
--   files the file_search executor: nothing but the file functions, each of which needs a
--         grant the supervisor made for one call and reaches only that grant's tenant.
--
-- Processors have no role at all.
DO $roles$
DECLARE
    api text := current_setting('oneo.api_role');
    qmgr text := current_setting('oneo.qmgr_role');
    api_password text := nullif(current_setting('oneo.api_password', true), '');
    qmgr_password text := nullif(current_setting('oneo.qmgr_password', true), '');
    files text := current_setting('oneo.files_role');
    files_password text := nullif(current_setting('oneo.files_password', true), '');
    item text;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = api) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', api);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = qmgr) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', qmgr);
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = files) THEN
        EXECUTE format('CREATE ROLE %I NOLOGIN NOINHERIT', files);
    END IF;
    EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', files);
    IF files_password IS NOT NULL THEN
        -- Four connections: a call's jail holds one (the default two executors, and a killed
        -- jail's session still closing); a compromised jail can tie up no more than these.
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L CONNECTION LIMIT 4', files, files_password);
    END IF;
    IF files_password IS NOT NULL THEN
        -- Defaults for its sessions (it could override them; the connection limit it cannot).
        EXECUTE format('ALTER ROLE %I SET statement_timeout = %L', files, '10s');
        EXECUTE format('ALTER ROLE %I SET work_mem = %L', files, '4MB');
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I', current_database(), files);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I', files);
    EXECUTE format('GRANT EXECUTE ON FUNCTION oneo_file_pending(text), oneo_file_store(text, bigint, text[], text), '
        'oneo_file_search(text, text, integer) TO %I', files);
    -- api: a tenant's uploads, under its policy; the passages are the executor's to write.
    EXECUTE format('REVOKE ALL ON tenant_files FROM %I', api);
    EXECUTE format('GRANT SELECT (id, tenant_id, name, media_type, size, status, passages, error, created_at), INSERT (tenant_id, name, media_type, content), DELETE ON tenant_files TO %I', api);
    EXECUTE format('GRANT USAGE ON SEQUENCE tenant_files_id_seq TO %I', api);
    DROP POLICY IF EXISTS oneo_api ON tenant_files;
    EXECUTE format('CREATE POLICY oneo_api ON tenant_files TO %I USING (tenant_id = oneo_current_tenant()) WITH CHECK (tenant_id = oneo_current_tenant())', api);
    -- Whatever a role of that name could do before, it can do only what follows.
    EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', api);
    EXECUTE format('ALTER ROLE %I NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS NOINHERIT', qmgr);
    IF api_password IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L CONNECTION LIMIT 64', api, api_password);
    END IF;
    IF qmgr_password IS NOT NULL THEN
        EXECUTE format('ALTER ROLE %I LOGIN PASSWORD %L CONNECTION LIMIT 16', qmgr, qmgr_password);
    END IF;
    EXECUTE format('GRANT CONNECT ON DATABASE %I TO %I, %I', current_database(), api, qmgr);
    EXECUTE format('GRANT USAGE ON SCHEMA public TO %I, %I', api, qmgr);
    -- Nobody but the owner creates objects in the schema (PostgreSQL 15's default; older ones
    -- let every role, which would let one plant functions the others resolve).
    REVOKE CREATE ON SCHEMA public FROM PUBLIC;

    -- api: tenant-facing tables, each under a policy keyed by the transaction's tenant. Jobs it
    -- queues and re-queues (a pending job's inputs), never their state, cost or lease.
    EXECUTE format('REVOKE ALL ON ai_jobs FROM %I', api);
    EXECUTE format('GRANT SELECT ON ai_jobs TO %I', api);
    EXECUTE format('GRANT INSERT (tenant_id, pipeline_id, record_id, field_name, model_name, field_version_id, input_data, '
        'record_version, triggered_by, max_attempts, depends_on, job_type, workflow) ON ai_jobs TO %I', api);
    EXECUTE format('GRANT UPDATE (model_name, field_version_id, input_data, record_version, triggered_by, max_attempts, depends_on, '
        'run_at, updated_at) ON ai_jobs TO %I', api);
    -- Cancel and retry change a job's state: only through these, for the transaction's tenant.
    EXECUTE format('GRANT EXECUTE ON FUNCTION oneo_cancel_jobs(bigint[]), oneo_requeue_jobs(bigint[], integer) TO %I', api);
    EXECUTE format('REVOKE ALL ON ai_job_attempts FROM %I', api);
    FOREACH item IN ARRAY ARRAY['pipelines', 'fields', 'field_versions', 'records', 'ai_jobs', 'ai_job_attempts'] LOOP
        IF item = 'ai_job_attempts' THEN
            EXECUTE format('GRANT SELECT ON %I TO %I', item, api);
        ELSIF item <> 'ai_jobs' THEN
            EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON %I TO %I', item, api);
        END IF;
        EXECUTE format('DROP POLICY IF EXISTS oneo_api ON %I', item);
        EXECUTE format('CREATE POLICY oneo_api ON %I TO %I USING (tenant_id = oneo_current_tenant()) WITH CHECK (tenant_id = oneo_current_tenant())', item, api);
    END LOOP;
    EXECUTE format('GRANT SELECT ON ai_usage TO %I', api);
    EXECUTE format('REVOKE ALL ON ai_job_artifacts FROM %I', api);
    EXECUTE format('GRANT SELECT ON ai_job_artifacts TO %I', api);
    DROP POLICY IF EXISTS oneo_api ON ai_job_artifacts;
    EXECUTE format('CREATE POLICY oneo_api ON ai_job_artifacts TO %I USING (tenant_id = oneo_current_tenant())', api);
    DROP POLICY IF EXISTS oneo_api ON ai_usage;
    EXECUTE format('CREATE POLICY oneo_api ON ai_usage TO %I USING (tenant_id = oneo_current_tenant())', api);
    EXECUTE format('GRANT SELECT (id, slug, name, status, default_model, sensitive_fields, always_on, monthly_budget_micros, time_zone) ON tenants TO %I', api);
    -- Budgets: the tenant's own periods, read only (the queue manager alone reserves and settles).
    EXECUTE format('REVOKE ALL ON budget_periods FROM %I', api);
    EXECUTE format('GRANT SELECT ON budget_periods TO %I', api);
    DROP POLICY IF EXISTS oneo_api ON budget_periods;
    EXECUTE format('CREATE POLICY oneo_api ON budget_periods TO %I USING (tenant_id = oneo_current_tenant())', api);
    DROP POLICY IF EXISTS oneo_api ON tenants;
    EXECUTE format('CREATE POLICY oneo_api ON tenants TO %I USING (id = oneo_current_tenant())', api);
    EXECUTE format('GRANT USAGE ON SEQUENCE pipelines_id_seq, fields_id_seq, field_versions_id_seq, records_id_seq, ai_jobs_id_seq TO %I', api);
    EXECUTE format('GRANT EXECUTE ON FUNCTION oneo_caller(bytea) TO %I', api);

    -- qmgr: every tenant's jobs (it claims across them), nothing else it does not need.
    EXECUTE format('REVOKE ALL ON ai_jobs FROM %I', qmgr);
    EXECUTE format('GRANT SELECT ON ai_jobs TO %I', qmgr);
    EXECUTE format('GRANT UPDATE (status, attempt, max_attempts, retry_count, locked_by, lease_until, run_at, started_at, '
        'completed_at, updated_at, output_data, prompt_audit, tokens_used, prompt_tokens, completion_tokens, cost_micros, '
        'processing_time_ms, error_code, error_message, error_retryable, cached_tokens, reserved_micros, reserved_periods, cache_hit, tool_calls) ON ai_jobs TO %I', qmgr);
    -- The budget ledger: reserved (oneo_reserve, run as the queue manager) and settled by the
    -- statements that end attempts.
    EXECUTE format('REVOKE ALL ON budget_periods FROM %I', qmgr);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON budget_periods TO %I', qmgr);
    EXECUTE format('GRANT USAGE ON SEQUENCE budget_periods_id_seq TO %I', qmgr);
    EXECUTE format('GRANT EXECUTE ON FUNCTION oneo_reserve(jsonb, text) TO %I', qmgr);
    -- Maintenance: finished jobs past their age go (usage rows stay); failed ones are re-queued
    -- through the same function as the API's retry.
    EXECUTE format('GRANT DELETE ON ai_jobs TO %I', qmgr);
    EXECUTE format('GRANT EXECUTE ON FUNCTION oneo_requeue_jobs_of(bigint, bigint[], integer) TO %I', qmgr);
    EXECUTE format('REVOKE ALL ON ai_job_attempts FROM %I', qmgr);
    EXECUTE format('GRANT SELECT, INSERT ON ai_job_attempts TO %I', qmgr);
    EXECUTE format('GRANT SELECT, INSERT ON ai_usage TO %I', qmgr);
    EXECUTE format('GRANT SELECT, INSERT, UPDATE ON ai_job_artifacts TO %I', qmgr);
    EXECUTE format('GRANT USAGE ON SEQUENCE ai_usage_id_seq TO %I', qmgr);
    EXECUTE format('GRANT SELECT (id, tenant_id, pipeline_id, data, version), UPDATE (data, version, updated_at) ON records TO %I', qmgr);
    EXECUTE format('GRANT SELECT ON pipelines, fields, field_versions TO %I', qmgr);
    EXECUTE format('GRANT SELECT (id, slug, name, status, sensitive_fields, monthly_budget_micros, time_zone, tools_enabled) ON tenants TO %I', qmgr);
    FOREACH item IN ARRAY ARRAY['ai_jobs', 'ai_job_attempts', 'ai_usage', 'records', 'pipelines', 'fields', 'field_versions', 'tenants', 'budget_periods', 'ai_job_artifacts'] LOOP
        EXECUTE format('DROP POLICY IF EXISTS oneo_qmgr ON %I', item);
        EXECUTE format('CREATE POLICY oneo_qmgr ON %I TO %I USING (true) WITH CHECK (true)', item, qmgr);
    END LOOP;
END
$roles$;
