-- 0006: row-level security. The API's role sees one tenant's rows: the tenant its transaction
-- names with set_config('oneo.tenant_id', …, true), so a query that forgot its tenant filter
-- still sees one tenant. The owner (the supervisor, `migrate`, the operator's CLI) is not
-- subject to it; the roles and their policies are set by roles.sql (RoleSetup), since their
-- names depend on the database.

-- The tenant of the current transaction, or NULL (no rows) when none was named.
CREATE FUNCTION oneo_current_tenant() RETURNS bigint
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('oneo.tenant_id', true), '')::bigint $$;

-- Authentication happens before a tenant is known: the one cross-tenant read the API may do,
-- by token hash only, returning the caller and never a sealed key.
CREATE FUNCTION oneo_caller(hash bytea)
    RETURNS TABLE (tenant_id bigint, tenant_name text, default_model text, sensitive_fields text[],
                   token_name text, permissions text[], active boolean)
    LANGUAGE sql STABLE SECURITY DEFINER
    SET search_path = pg_catalog, public, pg_temp
    AS $$
        SELECT t.id, t.name, t.default_model, t.sensitive_fields, k.name, k.permissions, t.status = 'active'
        FROM public.api_tokens k JOIN public.tenants t ON t.id = k.tenant_id
        WHERE k.token_hash = hash AND k.revoked_at IS NULL
    $$;
REVOKE ALL ON FUNCTION oneo_caller(bytea) FROM PUBLIC;

ALTER TABLE tenants ENABLE ROW LEVEL SECURITY;
ALTER TABLE api_tokens ENABLE ROW LEVEL SECURITY;
ALTER TABLE pipelines ENABLE ROW LEVEL SECURITY;
ALTER TABLE fields ENABLE ROW LEVEL SECURITY;
ALTER TABLE field_versions ENABLE ROW LEVEL SECURITY;
ALTER TABLE records ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_jobs ENABLE ROW LEVEL SECURITY;
ALTER TABLE ai_usage ENABLE ROW LEVEL SECURITY;
