-- 0010: the reference's global fallback key, without a silent fallback: the operator's key is
-- stored sealed (bound to tenant id 0, which no tenant has), and a tenant uses it only when set
-- to (`key_source = 'operator'`). Only the owner (the supervisor and the operator's CLI) reads it:
-- row-level security with no policy hides it from every other role.
CREATE TABLE operator_settings (
    id                  smallint PRIMARY KEY CHECK (id = 1),
    fallback_key_sealed bytea,
    updated_at          timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE operator_settings ENABLE ROW LEVEL SECURITY;
ALTER TABLE tenants ADD COLUMN key_source text NOT NULL DEFAULT 'own' CHECK (key_source IN ('own', 'operator'));
