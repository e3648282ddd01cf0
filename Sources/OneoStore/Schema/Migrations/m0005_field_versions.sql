-- 0005: an AI field's config (its template among it) is stored once per version of the field, and
-- each job points at the version it was queued for, instead of carrying a copy of the template
-- and the whole ai_config on every row: a record change no longer writes kilobytes per job, and a
-- job list never reads them.
CREATE TABLE field_versions (
    id         bigserial PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    field_id   bigint NOT NULL REFERENCES fields (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    ai_config  jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX field_versions_field ON field_versions (tenant_id, field_id);

INSERT INTO field_versions (tenant_id, field_id, ai_config)
SELECT tenant_id, id, ai_config FROM fields WHERE ai_config IS NOT NULL;

-- The field's current version; set exactly for ai_generated fields. Deferred: a new field and its
-- first version are inserted by one statement, each naming the other.
ALTER TABLE fields ADD COLUMN version_id bigint REFERENCES field_versions (id) DEFERRABLE INITIALLY DEFERRED;
UPDATE fields f SET version_id = v.id FROM field_versions v WHERE v.field_id = f.id;

ALTER TABLE ai_jobs ADD COLUMN field_version_id bigint REFERENCES field_versions (id) ON DELETE SET NULL;
UPDATE ai_jobs j SET field_version_id = f.version_id
FROM fields f WHERE f.tenant_id = j.tenant_id AND f.pipeline_id = j.pipeline_id AND f.slug = j.field_name;
-- A job whose field is gone has nothing left to run; its own copy goes with the columns below.
UPDATE ai_jobs SET status = 'cancelled', error_code = 'field_missing', error_message = 'the field no longer exists',
                   completed_at = now(), lease_until = NULL
WHERE field_version_id IS NULL AND status IN ('pending', 'processing');
ALTER TABLE ai_jobs DROP COLUMN prompt_template, DROP COLUMN ai_config;
-- Deleting a field's versions sets its jobs' pointers to NULL: found by index, not a scan.
CREATE INDEX ai_jobs_field_version ON ai_jobs (field_version_id);
