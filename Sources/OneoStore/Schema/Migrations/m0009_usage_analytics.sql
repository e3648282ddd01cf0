-- 0009: analytics. Each usage row names the field it was spent on (usage rows outlive their jobs,
-- so the field cannot be read from the job later), and a tenant's rows are read by time.
ALTER TABLE ai_usage ADD COLUMN field_name text;
UPDATE ai_usage u SET field_name = j.field_name FROM ai_jobs j WHERE u.job_id = j.id;
CREATE INDEX ai_usage_tenant_created ON ai_usage (tenant_id, created_at);
-- Performance figures read a tenant's finished jobs by time.
CREATE INDEX ai_jobs_tenant_completed_any ON ai_jobs (tenant_id, completed_at) WHERE completed_at IS NOT NULL;
