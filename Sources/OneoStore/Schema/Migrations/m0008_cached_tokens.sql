-- 0008: prompt tokens the provider served from its prompt cache, priced at the cached-input
-- price; kept on each job and each usage row so that costs can be checked to the micro-dollar.
-- The columns are added without a table rewrite; the checks hold for every new row (NOT VALID:
-- the old rows, all 0, are not scanned under the lock).
ALTER TABLE ai_jobs ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0;
ALTER TABLE ai_jobs ADD CONSTRAINT ai_jobs_cached_tokens CHECK (cached_tokens >= 0 AND cached_tokens <= prompt_tokens) NOT VALID;
ALTER TABLE ai_usage ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0;
ALTER TABLE ai_usage ADD CONSTRAINT ai_usage_cached_tokens CHECK (cached_tokens >= 0 AND cached_tokens <= prompt_tokens) NOT VALID;
