import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import StackControl

/// The Postgres ceiling: `pgbench` running, one job at a time per client, exactly the statements
/// one job costs when nothing is batched (the API's authentication, pipeline lookup and record
/// write with its job and NOTIFY; the claim; the context read; the fenced result commit).
struct PgbenchCeiling {
    let database: DatabaseSettings
    let tenant: TenantID
    let pipeline: PipelineID
    let tokenHash: String
    let clients: Int
    let seconds: Int

    static func executable() -> String? {
        let candidates = ["/usr/bin/pgbench"] + ((try? FileManager.default.contentsOfDirectory(atPath: "/usr/lib/postgresql")) ?? [])
            .compactMap(Int.init).sorted(by: >).map { "/usr/lib/postgresql/\($0)/bin/pgbench" }
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    var script: String {
        """
        \\set n random(1, 1000000000)
        SELECT * FROM oneo_caller(decode('\(self.tokenHash)', 'hex'));
        SELECT id, name, slug, created_at FROM pipelines WHERE tenant_id = :tenant AND (id = :pipeline OR slug = 'bench') ORDER BY (id = :pipeline) DESC LIMIT 1;
        BEGIN;
        SELECT set_config('oneo.tenant_id', :tenant::text, true);
        SELECT id, slug, name, field_type, position, ai_config FROM fields WHERE tenant_id = :tenant AND pipeline_id = :pipeline ORDER BY position, id;
        INSERT INTO records (tenant_id, pipeline_id, data, created_by, updated_by) VALUES (:tenant, :pipeline, jsonb_build_object('name', 'Bench ' || :n, 'company', 'Initech', 'notes', 'pgbench ceiling'), 'bench', 'bench') RETURNING id AS record_id \\gset
        INSERT INTO ai_jobs (tenant_id, pipeline_id, record_id, field_name, model_name, field_version_id, input_data, record_version, triggered_by) SELECT :tenant, :pipeline, :record_id, 'summary', 'gpt-4o-mini', f.version_id, '{"record_version": 1}', 1, 'bench' FROM fields f WHERE f.tenant_id = :tenant AND f.pipeline_id = :pipeline AND f.slug = 'summary' ON CONFLICT (tenant_id, record_id, field_name) WHERE status = 'pending' DO UPDATE SET updated_at = now() RETURNING id AS job_id \\gset
        SELECT pg_notify('oneo_jobs', :tenant::text);
        COMMIT;
        UPDATE ai_jobs SET status = 'processing', attempt = attempt + 1, locked_by = 'pgbench', lease_until = now() + interval '120 seconds', started_at = now(), updated_at = now() WHERE id = :job_id AND status = 'pending' RETURNING id, pipeline_id, record_id, field_name, model_name, field_version_id, attempt, max_attempts, triggered_by;
        SELECT r.data, p.name, v.ai_config FROM records r JOIN pipelines p ON p.id = r.pipeline_id JOIN fields f ON f.pipeline_id = p.id AND f.slug = 'summary' JOIN field_versions v ON v.id = f.version_id WHERE r.id = :record_id AND r.tenant_id = :tenant;
        WITH done AS (UPDATE ai_jobs SET status = 'completed', output_data = '{"content": "Summary"}', tokens_used = 60, prompt_tokens = 40, completion_tokens = 20, cost_micros = 18, processing_time_ms = 1, lease_until = NULL, completed_at = now(), updated_at = now() WHERE id = :job_id AND status = 'processing' AND attempt = 1 AND locked_by = 'pgbench' RETURNING id), written AS (UPDATE records SET data = jsonb_set(data, ARRAY['summary'], '"Summary"'), version = version + 1, updated_at = now() WHERE id = :record_id AND tenant_id = :tenant AND EXISTS (SELECT 1 FROM done)) INSERT INTO ai_usage (tenant_id, job_id, attempt, user_name, ai_provider, model_name, operation_type, tokens_used, prompt_tokens, completion_tokens, cost_micros, response_time_ms, pipeline_id, record_id) SELECT :tenant, id, 1, 'bench', 'openai', 'gpt-4o-mini', 'field_generation', 60, 40, 20, 18, 1, :pipeline, :record_id FROM done;

        """
    }

    /// Runs pgbench and returns its transactions (here: jobs) per second.
    func run(workDirectory: String) async throws -> Double {
        guard let pgbench = Self.executable() else { throw BenchmarkError("pgbench not found: install Debian's postgresql-contrib / postgresql-client") }
        let scriptPath = workDirectory + "/pgbench-job.sql"
        try self.script.write(toFile: scriptPath, atomically: true, encoding: .utf8)
        var arguments = ["-n", "-M", "extended", "-c", String(self.clients), "-j", String(min(self.clients, 2)), "-T", String(self.seconds),
                         "-D", "tenant=\(self.tenant)", "-D", "pipeline=\(self.pipeline)", "-f", scriptPath, "-U", self.database.username]
        var environment = ProcessInfo.processInfo.environment
        switch self.database.endpoint {
        case .unixSocket(let path):
            let directory = (path as NSString).deletingLastPathComponent
            let port = path.split(separator: ".").last.map(String.init) ?? "5432"
            arguments += ["-h", directory, "-p", port]
        case .tcp(let host, let port, _):
            arguments += ["-h", host, "-p", String(port)]
        }
        environment["PGPASSWORD"] = nil
        if let password = self.database.password {
            // A 0600 password file, not PGPASSWORD: the environment of a process is readable by
            // its user through /proc.
            let file = workDirectory + "/pgbench.pgpass"
            FileManager.default.createFile(atPath: file, contents: Data("*:*:*:*:\(password)\n".utf8), attributes: [.posixPermissions: 0o600])
            environment["PGPASSFILE"] = file
        }
        arguments.append(self.database.database)
        let output = try await ManagedProcess.run(pgbench, arguments, environment: environment, logFile: workDirectory + "/pgbench.log")
        guard let line = output.split(separator: "\n").first(where: { $0.hasPrefix("tps = ") }),
            let value = Double(line.dropFirst("tps = ".count).prefix(while: { $0 != " " }))
        else { throw BenchmarkError("could not read pgbench's tps; see \(workDirectory)/pgbench.log") }
        return value
    }
}
