-- 0008: prompt tokens the provider served from its prompt cache, priced at the cached-input
-- price; kept on each job and each usage row so that costs can be checked to the micro-dollar.
ALTER TABLE ai_jobs ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0);
ALTER TABLE ai_usage ADD COLUMN cached_tokens integer NOT NULL DEFAULT 0 CHECK (cached_tokens >= 0);
