-- 0002: a pipeline's field list carries a version, bumped with every field change, so that a
-- processor can cache the list and know from each claimed job whether its copy is current.
ALTER TABLE pipelines ADD COLUMN fields_version bigint NOT NULL DEFAULT 1;
