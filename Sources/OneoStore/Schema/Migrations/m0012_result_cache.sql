-- 0012: the per-tenant result cache. A job answered from the cache (or by an identical request
-- in flight) completes with no call and no cost; its usage row says it was a hit, so analytics
-- count hits beside the calls they saved.
ALTER TABLE ai_usage ADD COLUMN cache_hit boolean NOT NULL DEFAULT false;

-- The instance's own namespace in Redis: two deployments (or a test's many databases) sharing one
-- Redis never share a cache entry or an ACL user. Only the owner (the supervisor) reads it.
CREATE TABLE instance_settings (
    id              smallint PRIMARY KEY CHECK (id = 1),
    cache_namespace text NOT NULL CHECK (cache_namespace ~ '^[0-9a-f]{12}$')
);
INSERT INTO instance_settings (id, cache_namespace) VALUES (1, substr(replace(gen_random_uuid()::text, '-', ''), 1, 12));
ALTER TABLE instance_settings ENABLE ROW LEVEL SECURITY;
