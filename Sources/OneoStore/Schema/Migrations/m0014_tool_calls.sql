-- 0014: a job's tool calls, in order: which tool, how long, how many bytes went back to the
-- model, and the error it was told (never the arguments or the output: tenant data stays in the
-- record). Written with the result; priced into the job's cost by the queue manager.
ALTER TABLE ai_jobs ADD COLUMN tool_calls jsonb NOT NULL DEFAULT '[]'::jsonb;

-- Whether the tenant's fields may use tools at all (the reference's default: on). Off, no job of
-- the tenant is granted a tool, whatever its field says.
ALTER TABLE tenants ADD COLUMN tools_enabled boolean NOT NULL DEFAULT true;
