-- 0004: processors start on demand and stop when idle; an always-on tenant keeps its processor
-- running (latency-sensitive tenants pay one process for a warm start).
ALTER TABLE tenants ADD COLUMN always_on boolean NOT NULL DEFAULT false;
