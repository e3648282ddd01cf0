-- 0003: the sensitive-data guard. A tenant's own sensitive field names add to the built-in list;
-- each job keeps the audit of its prompt (counts and field names, never values).
ALTER TABLE tenants ADD COLUMN sensitive_fields text[] NOT NULL DEFAULT '{}';
ALTER TABLE ai_jobs ADD COLUMN prompt_audit jsonb NOT NULL DEFAULT '{}'::jsonb;
