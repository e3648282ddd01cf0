-- 0013: the workflow AI node (the reference's process_workflow_ai). A node's job belongs to no
-- record: it carries its own config and the workflow's context in `workflow`, and its result
-- stays on the job (output_data). It runs through the same queue, processors, cache and budgets.
ALTER TABLE ai_jobs ALTER COLUMN pipeline_id DROP NOT NULL;
ALTER TABLE ai_jobs ALTER COLUMN record_id DROP NOT NULL;
-- {"execution_id": text, "node_id": text, "config": ai_config, "context": object}; NULL for a field's job.
ALTER TABLE ai_jobs ADD COLUMN workflow jsonb;
ALTER TABLE ai_jobs ADD CONSTRAINT ai_jobs_subject CHECK (
    CASE WHEN workflow IS NULL THEN pipeline_id IS NOT NULL AND record_id IS NOT NULL
         ELSE pipeline_id IS NULL AND record_id IS NULL AND jsonb_typeof(workflow -> 'config') = 'object'
              AND jsonb_typeof(workflow -> 'context') = 'object' END) NOT VALID;
-- A workflow engine retries its HTTP call: the same execution's node is one job, found again.
CREATE UNIQUE INDEX ai_jobs_workflow_node ON ai_jobs (tenant_id, (workflow ->> 'execution_id'), (workflow ->> 'node_id'))
    WHERE workflow IS NOT NULL;

-- Re-queueing: a field's job runs its field as configured now (its current version and model);
-- a workflow node's job runs the config it was queued with. Workflow jobs have no record, so the
-- newest-per-(record, field) choice counts each of them apart.
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
            SELECT j.id, coalesce(j.record_id, -j.id) AS subject, j.field_name FROM public.ai_jobs j
            WHERE j.tenant_id = p_tenant AND j.id = ANY (p_ids) AND j.status IN ('failed', 'cancelled')
            FOR UPDATE)
        SELECT DISTINCT ON (c.subject, c.field_name) c.id FROM candidates c
        ORDER BY c.subject, c.field_name, c.id DESC
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
                  WHERE o.id = r.id AND o.tenant_id = p_tenant AND o.workflow IS NULL) current
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
