-- 0011: budgets that are never exceeded. Before every provider call of a budgeted job the queue
-- manager reserves a strict upper bound of the call's cost against every budget that applies
-- (the field's and the tenant's month), in one transaction, and only a granted call is made. A
-- reservation is held on the attempt's own row (`ai_jobs.reserved_micros`, `reserved_periods`):
-- what a budget has reserved is what its processing attempts hold, never a counter that could
-- drift from them. When the attempt ends, the same statement that ends it charges the budget:
-- the real cost when it is known, the whole reservation when it is not (a crash, a timeout, a
-- cancel: the provider may have billed). Budget periods are rows, created at the first
-- reservation of a month.

-- The tenant's monthly budget runs by calendar month in this zone.
ALTER TABLE tenants ADD COLUMN time_zone text NOT NULL DEFAULT 'UTC';

CREATE TABLE budget_periods (
    id              bigserial PRIMARY KEY,
    tenant_id       bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    -- 'tenant': the tenant's monthly budget; 'field': one AI field's (pipeline_id, field_name).
    scope           text NOT NULL CHECK (scope IN ('tenant', 'field')),
    pipeline_id     bigint NOT NULL DEFAULT 0,
    field_name      text NOT NULL DEFAULT '',
    -- The first day of the calendar month, in the tenant's zone.
    period_start    date NOT NULL,
    -- The limit as of the newest reservation (what was checked), for display.
    limit_micros    bigint NOT NULL DEFAULT 0 CHECK (limit_micros >= 0),
    spent_micros    bigint NOT NULL DEFAULT 0 CHECK (spent_micros >= 0),
    updated_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, scope, pipeline_id, field_name, period_start)
);
ALTER TABLE budget_periods ENABLE ROW LEVEL SECURITY;
-- A field period's first reservation counts the field's spend this month from the usage rows.
CREATE INDEX ai_usage_field_created ON ai_usage (tenant_id, pipeline_id, field_name, created_at);

-- The current attempt's reservation: what it holds and against which periods. Set by
-- oneo_reserve, counted against those periods while the job is processing, charged by the
-- statement that ends the attempt, cleared by the next claim.
ALTER TABLE ai_jobs ADD COLUMN reserved_micros bigint NOT NULL DEFAULT 0 CHECK (reserved_micros >= 0);
ALTER TABLE ai_jobs ADD COLUMN reserved_periods bigint[] NOT NULL DEFAULT '{}';
-- (What a period holds is summed over the tenant's processing jobs, found by ai_jobs_leases: a
-- few dozen rows; no index of its own to maintain on every job update.)

-- false: the attempt's real cost is unknown and it was charged its reservation.
ALTER TABLE ai_usage ADD COLUMN metered boolean NOT NULL DEFAULT true;

-- Reserves, for each request in order, `amount` against every budget that applies to its job:
-- all of them or none. A request is granted only if every budget has room for the whole amount
-- (never "what is left"): spent + what processing attempts hold + amount <= limit. Runs as its
-- caller (the queue manager's role), in its transaction; the queue manager's group commit is the
-- only caller, one batch at a time, and every period is locked, so nothing reserves meanwhile.
-- Requests: [{tenant_id, job_id, attempt, amount, field_limit (null: none), pipeline_id,
-- field_name}]; the job must be processing under `p_worker` at that attempt. Outcomes:
-- 'granted', 'unlimited' (no budget applies; nothing reserved), 'exceeded' (o_scope names the
-- budget, with its limit, spent and reserved), 'stale' (the attempt is no longer held).
CREATE FUNCTION oneo_reserve(p_requests jsonb, p_worker text)
    RETURNS TABLE (o_index integer, o_outcome text, o_scope text, o_limit bigint, o_spent bigint, o_reserved bigint)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    n integer := jsonb_array_length(p_requests);
    req jsonb;
    i integer;
    j record;
    t record;
    start date;
    since timestamptz;
    tenant_period bigint[] := array_fill(NULL::bigint, ARRAY[greatest(n, 1)]);
    field_period bigint[] := array_fill(NULL::bigint, ARRAY[greatest(n, 1)]);
    held boolean[] := array_fill(false, ARRAY[greatest(n, 1)]);
    every_period bigint[] := '{}';
    found_id bigint;
    other_id bigint;
    p record;
    lim bigint;
    amount bigint;
    refused_scope text;
    refused_limit bigint;
    refused_spent bigint;
    refused_reserved bigint;
    holding bigint;
    monthly bigint[] := array_fill(NULL::bigint, ARRAY[greatest(n, 1)]);
BEGIN
    -- 0. Every job of the batch locked in id order first, as the other writers lock jobs before
    --    periods: no two of them ever wait on each other in a circle.
    PERFORM 1 FROM ai_jobs a WHERE a.id IN (SELECT (r ->> 'job_id')::bigint FROM jsonb_array_elements(p_requests) r)
    ORDER BY a.id FOR UPDATE;
    -- 1. Each request's job, fenced, and the periods it reserves against (created where
    --    missing, their spend so far counted from the usage rows).
    FOR i IN 1 .. n LOOP
        req := p_requests -> (i - 1);
        SELECT a.reserved_periods INTO j FROM ai_jobs a
        WHERE a.id = (req ->> 'job_id')::bigint AND a.tenant_id = (req ->> 'tenant_id')::bigint AND a.status = 'processing'
          AND a.attempt = (req ->> 'attempt')::integer AND a.locked_by = p_worker
        FOR UPDATE;
        CONTINUE WHEN NOT FOUND;
        held[i] := true;
        IF cardinality(j.reserved_periods) > 0 THEN
            SELECT x.monthly_budget_micros INTO found_id FROM tenants x WHERE x.id = (req ->> 'tenant_id')::bigint;
            monthly[i] := found_id;
            -- A later call of the same attempt reserves against the attempt's own periods.
            SELECT max(b.id) FILTER (WHERE b.scope = 'tenant'), max(b.id) FILTER (WHERE b.scope = 'field')
              INTO found_id, other_id
            FROM budget_periods b WHERE b.id = ANY (j.reserved_periods);
            tenant_period[i] := found_id;
            field_period[i] := other_id;
        ELSE
            SELECT x.monthly_budget_micros, x.time_zone INTO t FROM tenants x WHERE x.id = (req ->> 'tenant_id')::bigint;
            monthly[i] := t.monthly_budget_micros;
            start := date_trunc('month', now() AT TIME ZONE t.time_zone)::date;
            since := start::timestamp AT TIME ZONE t.time_zone;
            IF t.monthly_budget_micros IS NOT NULL THEN
                -- The month's usage is summed once, when its period is created: never per call.
                SELECT b.id INTO found_id FROM budget_periods b
                WHERE b.tenant_id = (req ->> 'tenant_id')::bigint AND b.scope = 'tenant' AND b.pipeline_id = 0 AND b.field_name = ''
                  AND b.period_start = start;
                IF NOT FOUND THEN
                    INSERT INTO budget_periods (tenant_id, scope, period_start, spent_micros)
                    SELECT (req ->> 'tenant_id')::bigint, 'tenant', start, coalesce(sum(u.cost_micros), 0)
                    FROM ai_usage u WHERE u.tenant_id = (req ->> 'tenant_id')::bigint AND u.created_at >= since
                    ON CONFLICT DO NOTHING;
                    SELECT b.id INTO found_id FROM budget_periods b
                    WHERE b.tenant_id = (req ->> 'tenant_id')::bigint AND b.scope = 'tenant' AND b.pipeline_id = 0 AND b.field_name = ''
                      AND b.period_start = start;
                END IF;
                tenant_period[i] := found_id;
            END IF;
            IF req ->> 'field_limit' IS NOT NULL THEN
                SELECT b.id INTO found_id FROM budget_periods b
                WHERE b.tenant_id = (req ->> 'tenant_id')::bigint AND b.scope = 'field' AND b.pipeline_id = (req ->> 'pipeline_id')::bigint
                  AND b.field_name = req ->> 'field_name' AND b.period_start = start;
                IF NOT FOUND THEN
                    INSERT INTO budget_periods (tenant_id, scope, pipeline_id, field_name, period_start, spent_micros)
                    SELECT (req ->> 'tenant_id')::bigint, 'field', (req ->> 'pipeline_id')::bigint, req ->> 'field_name', start,
                           coalesce(sum(u.cost_micros), 0)
                    FROM ai_usage u WHERE u.tenant_id = (req ->> 'tenant_id')::bigint AND u.created_at >= since
                      AND u.pipeline_id = (req ->> 'pipeline_id')::bigint AND u.field_name = req ->> 'field_name'
                    ON CONFLICT DO NOTHING;
                    SELECT b.id INTO found_id FROM budget_periods b
                    WHERE b.tenant_id = (req ->> 'tenant_id')::bigint AND b.scope = 'field' AND b.pipeline_id = (req ->> 'pipeline_id')::bigint
                      AND b.field_name = req ->> 'field_name' AND b.period_start = start;
                END IF;
                field_period[i] := found_id;
            END IF;
        END IF;
        every_period := every_period || array_remove(ARRAY[tenant_period[i], field_period[i]], NULL);
    END LOOP;

    -- 2. Every period of the batch locked in id order, as the settling statements lock them:
    --    no two ledger writers ever wait on each other in a circle.
    PERFORM 1 FROM budget_periods b WHERE b.id = ANY (every_period) ORDER BY b.id FOR UPDATE;

    -- 3. Each request in turn against the budgets as the earlier ones left them.
    FOR i IN 1 .. n LOOP
        req := p_requests -> (i - 1);
        o_index := i - 1;
        o_scope := NULL; o_limit := NULL; o_spent := NULL; o_reserved := NULL;
        IF NOT held[i] THEN
            o_outcome := 'stale';
            RETURN NEXT;
            CONTINUE;
        END IF;
        IF tenant_period[i] IS NULL AND field_period[i] IS NULL THEN
            o_outcome := 'unlimited';
            RETURN NEXT;
            CONTINUE;
        END IF;
        amount := (req ->> 'amount')::bigint;
        refused_scope := NULL;
        FOR p IN SELECT b.id, b.scope, b.spent_micros FROM budget_periods b
                 WHERE b.id IN (tenant_period[i], field_period[i]) ORDER BY b.id LOOP
            -- What the period's processing attempts hold now (this transaction's grants included).
            SELECT coalesce(sum(a.reserved_micros), 0) INTO holding FROM ai_jobs a
            WHERE a.tenant_id = (req ->> 'tenant_id')::bigint AND a.status = 'processing' AND a.lease_until IS NOT NULL
              AND a.reserved_periods @> ARRAY[p.id];
            IF p.scope = 'tenant' THEN
                lim := monthly[i];
            ELSE
                lim := (req ->> 'field_limit')::bigint;
            END IF;
            IF lim IS NOT NULL THEN
                UPDATE budget_periods b SET limit_micros = lim WHERE b.id = p.id AND b.limit_micros IS DISTINCT FROM lim;
                IF p.spent_micros + holding + amount > lim AND refused_scope IS NULL THEN
                    refused_scope := p.scope; refused_limit := lim; refused_spent := p.spent_micros; refused_reserved := holding;
                END IF;
            END IF;
        END LOOP;
        IF refused_scope IS NOT NULL THEN
            o_outcome := 'exceeded';
            o_scope := refused_scope; o_limit := refused_limit; o_spent := refused_spent; o_reserved := refused_reserved;
            RETURN NEXT;
            CONTINUE;
        END IF;
        UPDATE ai_jobs a SET reserved_micros = a.reserved_micros + amount,
               reserved_periods = array_remove(ARRAY[tenant_period[i], field_period[i]], NULL)
        WHERE a.id = (req ->> 'job_id')::bigint AND a.tenant_id = (req ->> 'tenant_id')::bigint;
        o_outcome := 'granted';
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION oneo_reserve(jsonb, text) FROM PUBLIC;

-- Cancel now settles a processing job's reservation as spent (its call may have been billed),
-- with a usage row that says so, in the statement that cancels it.
CREATE OR REPLACE FUNCTION oneo_cancel_jobs_of(p_tenant bigint, p_ids bigint[], p_reason text)
    RETURNS TABLE (o_id bigint, o_was text)
    LANGUAGE plpgsql SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
DECLARE
    r record;
    held bigint[] := '{}';
BEGIN
    -- The UPDATE runs whole before the loop's body: every job is locked (in id order) before
    -- any budget period, as every ledger writer locks them.
    FOR r IN
        WITH target AS (
            SELECT j.id, j.status AS was FROM public.ai_jobs j
            WHERE j.tenant_id = p_tenant AND j.id = ANY (p_ids) AND j.status IN ('pending', 'processing')
            ORDER BY j.id
            FOR UPDATE)
        UPDATE public.ai_jobs j SET status = 'cancelled', error_code = 'cancelled', error_message = p_reason,
               error_retryable = false, lease_until = NULL, completed_at = now(), updated_at = now()
        FROM target t WHERE j.id = t.id AND j.tenant_id = p_tenant
        RETURNING j.id, t.was, j.attempt, j.started_at, j.reserved_micros
    LOOP
        IF r.was = 'processing' THEN
            INSERT INTO public.ai_job_attempts (tenant_id, job_id, attempt, outcome, error_code, error_message, started_at)
            VALUES (p_tenant, r.id, r.attempt, 'cancelled', 'cancelled', p_reason, r.started_at)
            ON CONFLICT DO NOTHING;
            IF r.reserved_micros > 0 THEN
                held := held || r.id;
            END IF;
            PERFORM pg_notify('oneo_jobs_cancelled', p_tenant || ':' || r.id || ':' || r.attempt);
        END IF;
        o_id := r.id;
        o_was := r.was;
        RETURN NEXT;
    END LOOP;
    IF cardinality(held) > 0 THEN
        -- Their calls may have been billed: each reservation is kept as spent, in one pass over
        -- the periods in id order, with a usage row that says so.
        PERFORM 1 FROM public.budget_periods b
        WHERE b.id IN (SELECT unnest(j.reserved_periods) FROM public.ai_jobs j WHERE j.id = ANY (held) AND j.tenant_id = p_tenant)
        ORDER BY b.id FOR UPDATE;
        UPDATE public.budget_periods b SET spent_micros = b.spent_micros + s.amount, updated_at = now()
        FROM (SELECT p.id, sum(j.reserved_micros)::bigint AS amount
              FROM public.ai_jobs j CROSS JOIN LATERAL unnest(j.reserved_periods) AS p(id)
              WHERE j.id = ANY (held) AND j.tenant_id = p_tenant GROUP BY p.id) s
        WHERE b.id = s.id;
        INSERT INTO public.ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type, tokens_used,
                                     cost_micros, response_time_ms, pipeline_id, record_id, field_name, metered)
        SELECT j.tenant_id, j.id, j.attempt, j.triggered_by, 'openai', j.model_name, 'field_generation', 0,
               j.reserved_micros, 0, j.pipeline_id, j.record_id, j.field_name, false
        FROM public.ai_jobs j WHERE j.id = ANY (held) AND j.tenant_id = p_tenant
        ON CONFLICT (job_id, attempt) DO NOTHING;
    END IF;
END
$$;
REVOKE ALL ON FUNCTION oneo_cancel_jobs_of(bigint, bigint[], text) FROM PUBLIC;

-- A job queued again runs the field as it is configured now (its current version and model):
-- one refused for the field's budget can be retried after the budget is raised, one that failed
-- on a template after the template is fixed. A field that is gone keeps the job's own version.
CREATE OR REPLACE FUNCTION oneo_requeue_jobs_of(p_tenant bigint, p_ids bigint[], p_attempts integer)
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
                   locked_by = NULL, updated_at = now(),
                   field_version_id = coalesce(current.version_id, j.field_version_id),
                   model_name = coalesce(current.model, j.model_name)
            FROM (SELECT max(f.version_id) AS version_id, max(coalesce(v.ai_config ->> 'model', t.default_model)) AS model
                  FROM public.ai_jobs o
                  JOIN public.fields f ON f.tenant_id = o.tenant_id AND f.pipeline_id = o.pipeline_id AND f.slug = o.field_name
                  JOIN public.field_versions v ON v.id = f.version_id AND v.tenant_id = f.tenant_id
                  JOIN public.tenants t ON t.id = o.tenant_id
                  WHERE o.id = r.id AND o.tenant_id = p_tenant) current
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
