-- 0001: the walking skeleton's schema. Every tenant-owned row carries tenant_id; money is integer
-- micro-dollars, with cents derived (never stored twice) for the reference's *_cents fields.

CREATE TABLE tenants (
    id                    bigserial PRIMARY KEY,
    slug                  text NOT NULL UNIQUE CHECK (slug ~ '^[a-z][a-z0-9_-]{0,62}$'),
    name                  text NOT NULL CHECK (length(name) BETWEEN 1 AND 200),
    status                text NOT NULL DEFAULT 'active' CHECK (status IN ('active', 'suspended')),
    provider_base_url     text NOT NULL DEFAULT 'https://api.openai.com/v1',
    default_model         text NOT NULL DEFAULT 'gpt-4o-mini',
    -- AES-GCM box of the provider key, bound to this tenant id; only the supervisor opens it.
    provider_key_sealed   bytea,
    monthly_budget_micros bigint CHECK (monthly_budget_micros >= 0),
    created_at            timestamptz NOT NULL DEFAULT now(),
    updated_at            timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE api_tokens (
    id           bigserial PRIMARY KEY,
    tenant_id    bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name         text NOT NULL,
    -- SHA-256 of the token; the token itself is shown once and never stored.
    token_hash   bytea NOT NULL UNIQUE,
    token_prefix text NOT NULL,
    permissions  text[] NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    revoked_at   timestamptz
);
CREATE INDEX api_tokens_tenant ON api_tokens (tenant_id);

CREATE TABLE pipelines (
    id         bigserial PRIMARY KEY,
    tenant_id  bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    name       text NOT NULL,
    slug       text NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (tenant_id, slug)
);

CREATE TABLE fields (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pipeline_id bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    name        text NOT NULL,
    slug        text NOT NULL,
    field_type  text NOT NULL,
    ai_config   jsonb,
    position    integer NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (pipeline_id, slug),
    CHECK ((field_type = 'ai_generated') = (ai_config IS NOT NULL))
);
CREATE INDEX fields_pipeline ON fields (tenant_id, pipeline_id, position);

CREATE TABLE records (
    id          bigserial PRIMARY KEY,
    tenant_id   bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    pipeline_id bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    data        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(data) = 'object'),
    version     bigint NOT NULL DEFAULT 1,
    created_by  text,
    updated_by  text,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX records_pipeline ON records (tenant_id, pipeline_id, id);

CREATE TABLE ai_jobs (
    id                 bigserial PRIMARY KEY,
    tenant_id          bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_type           text NOT NULL DEFAULT 'field_generation',
    pipeline_id        bigint NOT NULL REFERENCES pipelines (id) ON DELETE CASCADE,
    record_id          bigint NOT NULL REFERENCES records (id) ON DELETE CASCADE,
    field_name         text NOT NULL,
    ai_provider        text NOT NULL DEFAULT 'openai',
    model_name         text NOT NULL,
    prompt_template    text NOT NULL,
    ai_config          jsonb NOT NULL,
    -- What caused the job (record version, changed field names); never record values.
    input_data         jsonb NOT NULL DEFAULT '{}'::jsonb,
    status             text NOT NULL DEFAULT 'pending'
                       CHECK (status IN ('pending', 'processing', 'completed', 'failed', 'cancelled')),
    output_data        jsonb NOT NULL DEFAULT '{}'::jsonb,
    tokens_used        integer NOT NULL DEFAULT 0,
    prompt_tokens      integer NOT NULL DEFAULT 0,
    completion_tokens  integer NOT NULL DEFAULT 0,
    cost_micros        bigint NOT NULL DEFAULT 0 CHECK (cost_micros >= 0),
    cost_cents         bigint GENERATED ALWAYS AS ((cost_micros + 5000) / 10000) STORED,
    processing_time_ms integer NOT NULL DEFAULT 0,
    error_code         text,
    error_message      text NOT NULL DEFAULT '',
    retry_count        integer NOT NULL DEFAULT 0,
    attempt            integer NOT NULL DEFAULT 0,
    max_attempts       integer NOT NULL DEFAULT 3,
    run_at             timestamptz NOT NULL DEFAULT now(),
    lease_until        timestamptz,
    locked_by          text,
    cache_hit          boolean NOT NULL DEFAULT false,
    record_version     bigint NOT NULL,
    triggered_by       text,
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now(),
    started_at         timestamptz,
    completed_at       timestamptz
);
-- At most one pending job per (record, field): a newer change supersedes the pending one.
CREATE UNIQUE INDEX ai_jobs_one_pending ON ai_jobs (tenant_id, record_id, field_name) WHERE status = 'pending';
-- The processor's claim and the rescuer's scan touch only these small partial indexes.
CREATE INDEX ai_jobs_claim ON ai_jobs (tenant_id, run_at, id) WHERE status = 'pending';
CREATE INDEX ai_jobs_leases ON ai_jobs (tenant_id, lease_until) WHERE status = 'processing';
-- The reference's indexes, led by the tenant since every query is scoped to one.
CREATE INDEX idx_aijob_status ON ai_jobs (tenant_id, status);
CREATE INDEX idx_aijob_pipeline_record ON ai_jobs (tenant_id, pipeline_id, record_id);
CREATE INDEX idx_aijob_created_at ON ai_jobs (tenant_id, created_at);

CREATE TABLE ai_usage (
    id                bigserial PRIMARY KEY,
    tenant_id         bigint NOT NULL REFERENCES tenants (id) ON DELETE CASCADE,
    job_id            bigint REFERENCES ai_jobs (id) ON DELETE SET NULL,
    attempt           integer NOT NULL DEFAULT 1,
    user_name         text,
    ai_provider       text NOT NULL,
    model_name        text NOT NULL,
    operation_type    text NOT NULL,
    tokens_used       integer NOT NULL,
    prompt_tokens     integer NOT NULL DEFAULT 0,
    completion_tokens integer NOT NULL DEFAULT 0,
    cost_micros       bigint NOT NULL CHECK (cost_micros >= 0),
    cost_cents        bigint GENERATED ALWAYS AS ((cost_micros + 5000) / 10000) STORED,
    response_time_ms  integer NOT NULL,
    pipeline_id       bigint REFERENCES pipelines (id) ON DELETE SET NULL,
    record_id         bigint,
    date              date NOT NULL DEFAULT current_date,
    created_at        timestamptz NOT NULL DEFAULT now(),
    -- One charge per attempt of a job: a retried commit cannot bill twice.
    UNIQUE (job_id, attempt)
);
CREATE INDEX idx_usage_date_tenant ON ai_usage (date, tenant_id);
CREATE INDEX idx_usage_user_date ON ai_usage (tenant_id, user_name, date);
