-- 0010: the reference's global fallback key, without a silent fallback: the operator's key is
-- stored sealed with the one base URL it may be sent to (both bound by the sealing), and a tenant
-- uses it only when set to (`key_source = 'operator'`), with that base URL, never its own. Only the owner (the supervisor and the operator's CLI) reads it:
-- row-level security with no policy hides it from every other role.
CREATE TABLE operator_settings (
    id                  smallint PRIMARY KEY CHECK (id = 1),
    fallback_key_sealed bytea,
    fallback_base_url   text,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE operator_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants ADD COLUMN key_source text NOT NULL DEFAULT 'own' CHECK (key_source IN ('own', 'operator'));
-- No tenant is ever id 0 (ids also bind sealed keys and processor uids).
ALTER TABLE tenants ADD CONSTRAINT tenants_id_positive CHECK (id > 0) NOT VALID;
