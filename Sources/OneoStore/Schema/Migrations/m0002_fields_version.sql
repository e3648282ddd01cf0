-- 0002: a pipeline's field list carries a version, bumped with every field change, so that a
-- processor can cache the list and know from each claimed job whether its copy is current.
ALTER TABLE pipelines ADD COLUMN fields_version bigint NOT NULL DEFAULT 1;

-- The claim skips a (record, field) whose earlier job is still processing; this keeps that check
-- to the few processing rows instead of every job the record ever had.
CREATE INDEX ai_jobs_processing_field ON ai_jobs (tenant_id, record_id, field_name) WHERE status = 'processing';
