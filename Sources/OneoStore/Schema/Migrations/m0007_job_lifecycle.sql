-- 0007: the job lifecycle. Retries keep each ended attempt's error in a history; cancel and
-- retry are functions whose WHERE clauses are the rule (a job in the wrong state changes no row,
-- and the caller reports that as a conflict); an AI field that names another runs after it.

-- MAX_RETRIES = 3 by default: four attempts (the API sets it from queue.max_retries).
ALTER TABLE ai_jobs ALTER COLUMN max_attempts SET DEFAULT 4;
-- Whether the error that ended the job was transient (maintenance re-queues only those).
ALTER TABLE ai_jobs ADD COLUMN error_retryable boolean NOT NULL DEFAULT false;
-- Times the job was queued again after it ended (by an operator, the API or maintenance).
ALTER TABLE ai_jobs ADD COLUMN requeued_count integer NOT NULL DEFAULT 0;
-- The AI fields of the same record this job waits for (those its template names).
ALTER TABLE ai_jobs ADD COLUMN depends_on text[] NOT NULL DEFAULT '{}';

-- One row per attempt that ended without a result: what went wrong, and what became of the job.
CREATE TABLE ai_job_attempts (
    tenant_id        bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id           bigint NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    attempt          integer NOT NULL,
    outcome          text NOT NULL CHECK (outcome IN ('retried', 'failed', 'cancelled')),
    error_code       text NOT NULL,
    error_message    text NOT NULL DEFAULT '',
    provider_retries integer NOT NULL DEFAULT 0,
    started_at       timestamptz,
    ended_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, attempt)
);
CREATE INDEX ai_job_attempts_tenant ON ai_job_attempts (tenant_id, job_id);
-- Diagnostics count a tenant's failed attempts over a recent window.
CREATE INDEX ai_job_attempts_recent ON ai_job_attempts (tenant_id, ended_at);
ALTER TABLE ai_job_attempts ENABLE ROW LEVEL SECURITY;

-- The jobs API filters by creation time; maintenance deletes finished jobs by age.
CREATE INDEX ai_jobs_tenant_created ON ai_jobs (tenant_id, created_at);
CREATE INDEX ai_jobs_finished_at ON ai_jobs (completed_at) WHERE status IN ('completed', 'failed', 'cancelled');
CREATE INDEX ai_jobs_failed ON ai_jobs (tenant_id, completed_at) WHERE status = 'failed';
CREATE INDEX ai_jobs_completed ON ai_jobs (tenant_id, completed_at) WHERE status = 'completed';

-- Cancels a tenant's pending or processing jobs. A processing one's attempt is recorded and the
-- queue manager is told (channel oneo_jobs_cancelled, payload tenant:job:attempt) so that its
-- processor aborts the provider call; the row is final at once, and the queue manager's commit
-- of a late result matches nothing (it requires 'processing'). Returns each job cancelled with
-- the state it was in; jobs already finished are not returned.
CREATE FUNCTION oneo_cancel_jobs_of(p_tenant bigint, p_ids bigint[], p_reason text)
    RETURNS TABLE (o_id bigint, o_was text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    r record;
BEGIN
    FOR r IN
        WITH target AS (
            SELECT j.id, j.status AS was FROM public.ai_jobs j
            WHERE j.tenant_id = p_tenant AND j.id = ANY (p_ids) AND j.status IN ('pending', 'processing')
            FOR UPDATE)
        UPDATE public.ai_jobs j SET status = 'cancelled', error_code = 'cancelled', error_message = p_reason,
               error_retryable = false, lease_until = NULL, completed_at = now(), updated_at = now()
        FROM target t WHERE j.id = t.id AND j.tenant_id = p_tenant
        RETURNING j.id, t.was, j.attempt, j.started_at
    LOOP
        IF r.was = 'processing' THEN
            INSERT INTO public.ai_job_attempts (tenant_id, job_id, attempt, outcome, error_code, error_message, started_at)
            VALUES (p_tenant, r.id, r.attempt, 'cancelled', 'cancelled', p_reason, r.started_at)
            ON CONFLICT DO NOTHING;
            PERFORM pg_notify('oneo_jobs_cancelled', p_tenant || ':' || r.id || ':' || r.attempt);
        END IF;
        o_id := r.id;
        o_was := r.was;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION oneo_cancel_jobs_of(bigint, bigint[], text) FROM PUBLIC;

-- Queues a tenant's failed or cancelled jobs again with `p_attempts` more attempts. A job whose
-- (record, field) already has a pending job stays as it is (the pending one is newer), and of
-- several such jobs for one (record, field) only the newest is queued. Returns the jobs queued.
CREATE FUNCTION oneo_requeue_jobs_of(p_tenant bigint, p_ids bigint[], p_attempts integer)
    RETURNS TABLE (o_id bigint)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    r record;
    queued boolean := false;
BEGIN
    FOR r IN
        WITH candidates AS (
            SELECT j.id, j.record_id, j.field_name FROM public.ai_jobs j
            WHERE j.tenant_id = p_tenant AND j.id = ANY (p_ids) AND j.status IN ('failed', 'cancelled')
            FOR UPDATE)
        SELECT DISTINCT ON (c.record_id, c.field_name) c.id FROM candidates c
        ORDER BY c.record_id, c.field_name, c.id DESC
    LOOP
        -- A record write (or another retry) may queue the same field meanwhile: the partial
        -- unique index then refuses this one, which stays as it is.
        BEGIN
            UPDATE public.ai_jobs j SET status = 'pending', max_attempts = j.attempt + least(greatest(p_attempts, 1), 21),
                   requeued_count = j.requeued_count + 1, run_at = now(), completed_at = NULL, lease_until = NULL,
                   locked_by = NULL, updated_at = now()
            WHERE j.id = r.id AND j.tenant_id = p_tenant AND j.status IN ('failed', 'cancelled')
              AND NOT EXISTS (SELECT 1 FROM public.ai_jobs p WHERE p.tenant_id = j.tenant_id AND p.record_id = j.record_id
                              AND p.field_name = j.field_name AND p.status = 'pending');
            IF FOUND THEN
                queued := true;
                o_id := r.id;
                RETURN NEXT;
            END IF;
        EXCEPTION WHEN unique_violation THEN
            NULL;
        END;
    END LOOP;
    IF queued THEN
        PERFORM pg_notify('oneo_jobs', p_tenant::text);
    END IF;
END
$$;
REVOKE ALL ON FUNCTION oneo_requeue_jobs_of(bigint, bigint[], integer) FROM PUBLIC;

-- The API's entry points: the tenant is its transaction's, never an argument it passes.
CREATE FUNCTION oneo_cancel_jobs(p_ids bigint[])
    RETURNS TABLE (o_id bigint, o_was text)
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT * FROM public.oneo_cancel_jobs_of(public.oneo_current_tenant(), p_ids, 'cancelled by request') $$;
REVOKE ALL ON FUNCTION oneo_cancel_jobs(bigint[]) FROM PUBLIC;

CREATE FUNCTION oneo_requeue_jobs(p_ids bigint[], p_attempts integer)
    RETURNS TABLE (o_id bigint)
    LANGUAGE sql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$ SELECT * FROM public.oneo_requeue_jobs_of(public.oneo_current_tenant(), p_ids, p_attempts) $$;
REVOKE ALL ON FUNCTION oneo_requeue_jobs(bigint[], integer) FROM PUBLIC;
