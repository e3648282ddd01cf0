-- 0015: documents a tenant uploads for the file_search tool. The API stores each as sent; the
-- file_search executor (in its jail) splits it into passages the first time the tenant searches
-- after it arrived, and ranks passages with full-text search. The executor's role reads and
-- writes these only through the three functions below, and only the tenant of a grant the
-- supervisor made for one call: a compromised executor cannot name another tenant.
CREATE TABLE tenant_files (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name        text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    media_type  text NOT NULL CHECK (media_type IN ('text/plain', 'text/markdown', 'text/html')),
    content     text NOT NULL CHECK (octet_length(content) <= 1048576),
    size        integer GENERATED ALWAYS AS (octet_length(content)) STORED,
    status      text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'indexed', 'failed')),
    passages    integer NOT NULL DEFAULT 0,
    error       text CHECK (length(error) <= 300),
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, id)
);
CREATE INDEX tenant_files_pending ON tenant_files (tenant_id) WHERE status = 'pending';
ALTER TABLE tenant_files ENABLE ROW LEVEL SECURITY;

CREATE TABLE file_passages (
    tenant_id   bigint NOT NULL,
    file_id     bigint NOT NULL,
    ordinal     integer NOT NULL,
    body        text NOT NULL CHECK (octet_length(body) <= 4096),
    search      tsvector GENERATED ALWAYS AS (to_tsvector('simple', body)) STORED,
    PRIMARY KEY (file_id, ordinal),
    FOREIGN KEY (tenant_id, file_id) REFERENCES tenant_files (tenant_id, id) ON DELETE CASCADE
);
CREATE INDEX file_passages_search ON file_passages USING gin (search);
CREATE INDEX file_passages_tenant ON file_passages (tenant_id);
ALTER TABLE file_passages ENABLE ROW LEVEL SECURITY;

-- One grant per file_search call: the SHA-256 of a random token the supervisor hands the
-- executor with the call, the tenant it stands for, and a minute to use it.
CREATE TABLE file_search_grants (
    token_hash  bytea PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    expires_at  timestamptz NOT NULL
);

-- The tenant a live grant stands for, or an error.
CREATE FUNCTION oneo_file_grant(token text) RETURNS bigint
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant bigint;
BEGIN
    SELECT g.tenant_id INTO tenant FROM file_search_grants g
     WHERE g.token_hash = sha256(convert_to(token, 'UTF8')) AND g.expires_at > now();
    IF tenant IS NULL THEN
        RAISE EXCEPTION 'no live file search grant' USING ERRCODE = '42501';
    END IF;
    RETURN tenant;
END $$;

-- The grant's tenant's files that wait to be split, oldest first, a few at a time.
CREATE FUNCTION oneo_file_pending(token text)
RETURNS TABLE (id bigint, media_type text, content text)
LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
    SELECT f.id, f.media_type, f.content FROM tenant_files f
     WHERE f.tenant_id = oneo_file_grant(token) AND f.status = 'pending'
     ORDER BY f.id LIMIT 4
$$;

-- A file's passages (or why it could not be split), for the grant's tenant's file only.
CREATE FUNCTION oneo_file_store(token text, file bigint, bodies text[], failure text) RETURNS void
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant bigint := oneo_file_grant(token);
BEGIN
    IF coalesce(array_length(bodies, 1), 0) > 2000 THEN
        RAISE EXCEPTION 'too many passages' USING ERRCODE = '22023';
    END IF;
    PERFORM 1 FROM tenant_files WHERE id = file AND tenant_id = tenant AND status = 'pending' FOR UPDATE;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    IF failure IS NULL THEN
        INSERT INTO file_passages (tenant_id, file_id, ordinal, body)
        SELECT tenant, file, n, left(b, 2000) FROM unnest(bodies) WITH ORDINALITY AS u(b, n) WHERE length(b) > 0;
        UPDATE tenant_files SET status = 'indexed', passages = (SELECT count(*) FROM file_passages WHERE file_id = file) WHERE id = file;
    ELSE
        UPDATE tenant_files SET status = 'failed', error = left(failure, 300) WHERE id = file;
    END IF;
END $$;

-- The grant's tenant's best passages for a query, ranked. The grant is checked first, whatever
-- the query matches.
CREATE FUNCTION oneo_file_search(token text, query text, wanted integer)
RETURNS TABLE (file_name text, body text, rank real)
LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = pg_catalog, public AS $$
DECLARE
    tenant bigint := oneo_file_grant(token);
BEGIN
    RETURN QUERY
    SELECT f.name, p.body, ts_rank(p.search, q) FROM file_passages p
      JOIN tenant_files f ON f.id = p.file_id AND f.tenant_id = p.tenant_id,
           websearch_to_tsquery('simple', left(query, 512)) q
     WHERE p.tenant_id = tenant AND p.search @@ q
     ORDER BY 3 DESC, p.file_id, p.ordinal
     LIMIT greatest(1, least(wanted, 10));
END $$;

REVOKE ALL ON FUNCTION oneo_file_grant(text), oneo_file_pending(text), oneo_file_store(text, bigint, text[], text),
    oneo_file_search(text, text, integer) FROM PUBLIC;
