-- 0014: a job's tool calls, in order: which tool, how long, how many bytes went back to the
-- model, and the error it was told (never the arguments or the output: tenant data stays in the
-- record). Written with the result; priced into the job's cost by the queue manager.
ALTER TABLE ai_jobs ADD COLUMN tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb;

-- Whether the tenant's fields may use tools at all (the reference's default: on). Off, no job of
-- the tenant is granted a tool, whatever its field says.
ALTER TABLE tenants ADD COLUMN tools_enabled boolean NOT NULL DEFAULT true;

-- Files a job's tools made (a chart the code wrote), kept with the job and served by the API as
-- downloads. Written by the statement that commits the result, so only a committed attempt's.
CREATE TABLE ai_job_artifacts (
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id      bigint NOT NULL REFERENCES ai_jobs (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$'),
    media_type  text NOT NULL CHECK (length(media_type) <= 100),
    bytes       bytea NOT NULL CHECK (length(bytes) <= 262144),
    created_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (job_id, name)
);
CREATE INDEX ai_job_artifacts_tenant ON ai_job_artifacts (tenant_id, job_id);
ALTER TABLE ai_job_artifacts ENABLE ROW LEVEL SECURITY;
