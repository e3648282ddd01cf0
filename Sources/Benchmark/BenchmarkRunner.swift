import AsyncHTTPClient
import Foundation
public import Logging
import NIOCore
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO
import StackControl
import Synchronization

/// One benchmark run: a fresh stack (embedded, or on DATABASE_URL / REDIS_URL), N tenants with a
/// pipeline and one AI field each, M records per tenant written through the public HTTP API, and
/// the figures of docs/PERFORMANCE.md measured from the jobs' own timestamps, pg_stat_database
/// and /proc. Then pgbench runs one job's statements against the same server for the ceiling.
public struct BenchmarkRunner: Sendable {
    public let settings: BenchmarkSettings
    public let logger: Logger
    public let progress: @Sendable (String) -> Void

    public init(settings: BenchmarkSettings, logger: Logger, progress: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.logger = logger
        self.progress = progress
    }

    struct Tenant {
        let slug: String
        let api: JSONClient
    }

    struct Phase {
        let jobs: Int
        let jobsPerSecond: Double
        let latency: BenchmarkReport.Latency
        let commits: Int
        let cpuSeconds: [ProcessKind: Double]
        /// The engine's PostgreSQL connections (API, queue manager, supervisor), at most, sampled
        /// every 50 ms through the phase.
        let peakConnections: Int
    }

    public func run() async throws -> BenchmarkReport {
        try await BenchStack.with(
            directory: self.settings.directory, binDirectory: self.settings.binDirectory,
            serveOptions: ["--processor-concurrency", String(self.settings.concurrency)],
            simulatorLatencyMilliseconds: self.settings.latencyMilliseconds, httpConnections: max(8, self.settings.concurrency * 2),
            logger: self.logger, progress: self.progress
        ) { parts in
            try await self.measure(parts)
        }
    }

    private func measure(_ parts: BenchStack.Parts) async throws -> BenchmarkReport {
        let (stack, client, settings, http) = (parts.stack, parts.database, parts.databaseSettings, parts.http)
        let sealer = try KeySealer(masterKeyFile: DataDirectory(stack.directory + "/data").masterKeyFile)
        let registry = TenantRegistry(database: client, sealer: sealer)
        let tenants = try await self.makeTenants(registry, stack: stack, http: http)
        let sampler = ProcessSampler(supervisor: stack.serve.pid, simulator: stack.simulator.pid)

        self.progress("warming up: one record per tenant")
        var last = try await self.maxJobID(client)
        try await self.write(tenants, recordsPerTenant: 1, ratePerSecond: nil, label: "warm-up")
        try await self.waitForJobs(client, after: last, expected: tenants.count, label: "warm-up")
        last = try await self.maxJobID(client)

        let total = tenants.count * self.settings.recordsPerTenant
        let peak = try await self.phase(client, sampler: sampler, after: &last, expected: total, label: "peak") {
            try await self.write(tenants, recordsPerTenant: self.settings.recordsPerTenant, ratePerSecond: nil, label: "peak")
        }
        var paced: Phase?
        var pacedRate: Double?
        if self.settings.pacedPhase {
            let rate = max(1, peak.jobsPerSecond / 2)
            pacedRate = rate
            paced = try await self.phase(client, sampler: sampler, after: &last, expected: total, label: "half peak") {
                try await self.write(tenants, recordsPerTenant: self.settings.recordsPerTenant, ratePerSecond: rate, label: "half peak")
            }
        }
        let hits = try await self.cachePhase(client, tenants: tenants, after: &last)
        let finalSample = sampler.sample()

        var ceiling: Double?
        if self.settings.pgbenchSeconds > 0 {
            self.progress("pgbench: one job's statements, \(self.settings.concurrency) clients, \(self.settings.pgbenchSeconds) s")
            ceiling = try await self.pgbenchCeiling(registry, client: client, stack: stack, database: settings, http: http)
        }
        return BenchmarkReport(
            tenants: self.settings.tenants,
            records_per_tenant: self.settings.recordsPerTenant,
            latency_ms_setting: self.settings.latencyMilliseconds,
            concurrency: self.settings.concurrency,
            jobs: peak.jobs,
            jobs_per_sec: peak.jobsPerSecond,
            p50_ms: (paced ?? peak).latency.p50_ms,
            p95_ms: (paced ?? peak).latency.p95_ms,
            p99_ms: (paced ?? peak).latency.p99_ms,
            peak_latency: peak.latency,
            paced_latency: paced?.latency,
            paced_rate_per_sec: pacedRate,
            pg_commits_per_job: Double(peak.commits) / Double(max(peak.jobs, 1)),
            pg_connections_peak: peak.peakConnections,
            cpu_s_per_job: Dictionary(uniqueKeysWithValues: peak.cpuSeconds.map { ($0.key.rawValue, $0.value / Double(max(peak.jobs, 1))) }),
            rss_mib: Dictionary(uniqueKeysWithValues: finalSample.peakRSSMiB.map { ($0.key.rawValue, $0.value) }),
            processes: Dictionary(uniqueKeysWithValues: finalSample.processCount.map { ($0.key.rawValue, $0.value) }),
            pgbench_jobs_per_sec: ceiling,
            ratio_to_pgbench: ceiling.map { peak.jobsPerSecond / $0 },
            cache_hits: hits.count,
            cache_hit_latency: hits.latency,
            cache_hit_processing_p50_ms: hits.processingP50
        )
}

    // MARK: Setup

    private func makeTenants(_ registry: TenantRegistry, stack: LocalStack, http: HTTPClient) async throws -> [Tenant] {
        self.progress("creating \(self.settings.tenants) tenant(s), each with pipeline 'leads' and AI field 'summary'")
        var tenants: [Tenant] = []
        for index in 1...self.settings.tenants {
            let slug = String(format: "bench-%03d", index)
            let api = try await self.makeTenant(registry, slug: slug, holdProcessor: false, stack: stack, http: http)
            tenants.append(Tenant(slug: slug, api: api))
        }
        return tenants
    }

    private func makeTenant(_ registry: TenantRegistry, slug: String, holdProcessor: Bool, stack: LocalStack, http: HTTPClient) async throws -> JSONClient {
        try await BenchTenant.make(registry, slug: slug, holdProcessor: holdProcessor, stack: stack, http: http, logger: self.logger)
    }

    // MARK: Phases

    private func phase(
        _ client: PostgresClient,
        sampler: ProcessSampler,
        after last: inout Int64,
        expected: Int,
        label: String,
        writes: () async throws -> Void
    ) async throws -> Phase {
        let commitsBefore = try await self.committedTransactions(client)
        let cpuBefore = sampler.sample().cpuSeconds
        let start = last
        let peakConnections = Mutex(0)
        let sampling = Task {
            while !Task.isCancelled {
                if let count = try? await self.engineConnections(client) { peakConnections.withLock { $0 = max($0, count) } }
                try? await Task.sleep(for: .milliseconds(50))
            }
        }
        defer { sampling.cancel() }
        try await writes()
        try await self.waitForJobs(client, after: start, expected: expected, label: label)
        sampling.cancel()
        // Other backends publish their counters within a second of going idle.
        try await Task.sleep(for: .milliseconds(1500))
        let cpuAfter = sampler.sample().cpuSeconds
        let commitsAfter = try await self.committedTransactions(client)
        let rows = try await client.query(
            """
            SELECT count(*)::bigint,
                   extract(epoch FROM max(completed_at) - min(created_at))::float8,
                   (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   (percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   max(id)
            FROM ai_jobs WHERE id > \(start) AND status = 'completed'
            """,
            logger: self.logger
        )
        var phase: Phase?
        for try await (jobs, seconds, p50, p95, p99, maxID) in rows.decode((Int64, Double, Double, Double, Double, Int64).self) {
            last = maxID
            var cpu: [ProcessKind: Double] = [:]
            for (kind, after) in cpuAfter { cpu[kind] = after - (cpuBefore[kind] ?? 0) }
            // Our own two counter reads and the polling are transactions too; leave them out.
            let commits = max(0, commitsAfter - commitsBefore - self.pollCount.reset())
            phase = Phase(
                jobs: Int(jobs), jobsPerSecond: Double(jobs) / max(seconds, 0.001),
                latency: .init(p50_ms: p50 * 1000, p95_ms: p95 * 1000, p99_ms: p99 * 1000),
                commits: commits, cpuSeconds: cpu, peakConnections: peakConnections.withLock { $0 }
            )
        }
        guard let phase else { throw BenchmarkError("no completed jobs in the \(label) phase") }
        self.progress(String(format: "%@: %d jobs, %.1f jobs/s, p50 %.1f ms, p99 %.1f ms, %.2f commits/job, %d engine connections at most", label, phase.jobs, phase.jobsPerSecond, phase.latency.p50_ms, phase.latency.p99_ms, Double(phase.commits) / Double(max(phase.jobs, 1)), phase.peakConnections))
        return phase
    }

    /// Records that repeat one record per tenant: after its first call, each is answered from the
    /// tenant's result cache (or the call in the air). Measured over the hits alone.
    private func cachePhase(_ client: PostgresClient, tenants: [Tenant], after last: inout Int64) async throws -> (count: Int, latency: BenchmarkReport.Latency?, processingP50: Double?) {
        let perTenant = min(self.settings.recordsPerTenant, 100)
        let start = last
        try await self.write(tenants, recordsPerTenant: perTenant, ratePerSecond: nil, label: "cache hits", repeating: true)
        try await self.waitForJobs(client, after: start, expected: tenants.count * perTenant, label: "cache hits")
        let rows = try await client.query(
            """
            SELECT count(*)::bigint,
                   (percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   (percentile_cont(0.95) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   (percentile_cont(0.99) WITHIN GROUP (ORDER BY extract(epoch FROM completed_at - created_at)))::float8,
                   (percentile_cont(0.5) WITHIN GROUP (ORDER BY processing_time_ms))::float8,
                   coalesce((SELECT max(id) FROM ai_jobs WHERE id > \(start)), \(start))
            FROM ai_jobs WHERE id > \(start) AND status = 'completed' AND cache_hit
            """,
            logger: self.logger
        )
        for try await (count, p50, p95, p99, processing, maxID) in rows.decode((Int64, Double?, Double?, Double?, Double?, Int64).self) {
            last = maxID
            guard count > 0, let p50, let p95, let p99 else { return (0, nil, nil) }
            self.progress(String(format: "cache hits: %d of %d jobs, write → filled p50 %.1f ms, p99 %.1f ms, in the processor p50 %.0f ms", count, tenants.count * perTenant, p50 * 1000, p99 * 1000, processing ?? 0))
            return (Int(count), .init(p50_ms: p50 * 1000, p95_ms: p95 * 1000, p99_ms: p99 * 1000), processing)
        }
        return (0, nil, nil)
    }

    /// Client connections to the database that are not the benchmark's own. Counted by the poll
    /// like every query of ours, and left out of the commits.
    private func engineConnections(_ client: PostgresClient) async throws -> Int {
        self.pollCount.increment()
        var count = 0
        for try await value in try await client.query(
            """
            SELECT count(*)::bigint FROM pg_stat_activity
            WHERE datname = current_database() AND backend_type = 'client backend' AND application_name <> \(BenchStack.applicationName)
            """,
            logger: self.logger
        ).decode(Int.self) {
            count = value
        }
        return count
    }

    /// Writes records through the API, `concurrency` at a time, or paced at a fixed total rate.
    /// `repeating`: every record of a tenant is the same (its prompt repeats: the cache phase).
    private func write(_ tenants: [Tenant], recordsPerTenant: Int, ratePerSecond: Double?, label: String, repeating: Bool = false) async throws {
        let total = tenants.count * recordsPerTenant
        let counter = Counter()
        let companies = [("Initech", "Software"), ("Globex", "Energy"), ("Umbrella", "Pharma"), ("Hooli", "Internet"), ("Stark Industries", "Manufacturing")]
        @Sendable func record(_ index: Int) async throws {
            let tenant = tenants[index % tenants.count]
            let (company, industry) = companies[index % companies.count]
            let body: JSONValue = repeating
                ? ["data": ["name": "Lead again", "company": "Initech", "industry": "Software", "notes": "Met at the software summit."]]
                : ["data": [
                    "name": .string("Lead \(index)"), "company": .string(company), "industry": .string(industry),
                    "notes": .string("Met at the \(industry.lowercased()) summit; follow up in Q\(index % 4 + 1)."),
                ]]
            let response = try await tenant.api.post("/pipelines/leads/records/", body)
            guard response.status == 201 else { throw BenchmarkError("record write answered \(response.status): \(response.body.compactJSON)") }
            let written = counter.increment()
            if written % max(1, total / 10) == 0 || written == total { self.progress("\(label): written \(written)/\(total) records") }
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            if let rate = ratePerSecond {
                let start = ContinuousClock.now
                for index in 0..<total {
                    let due = start + .seconds(Double(index) / rate)
                    if due > .now { try await Task.sleep(until: due) }
                    group.addTask { try await record(index) }
                }
            } else {
                let next = Counter()
                for _ in 0..<self.settings.concurrency {
                    group.addTask {
                        while true {
                            let index = next.increment() - 1
                            guard index < total else { return }
                            try await record(index)
                        }
                    }
                }
            }
            try await group.waitForAll()
        }
    }

    private func waitForJobs(_ client: PostgresClient, after start: Int64, expected: Int, label: String) async throws {
        let timeout = Duration.seconds(120 + expected / 5 + expected * self.settings.latencyMilliseconds / 1000)
        var lastReport = ContinuousClock.now
        try await waitUntil("\(expected) \(label) jobs to finish", timeout: timeout, interval: .milliseconds(100)) {
            self.pollCount.increment()
            var finished = 0
            var failed = 0
            for try await (status, count) in try await client.query(
                "SELECT status, count(*)::bigint FROM ai_jobs WHERE id > \(start) AND status IN ('completed', 'failed') GROUP BY status",
                logger: self.logger
            ).decode((String, Int64).self) {
                finished += Int(count)
                if status == "failed" { failed = Int(count) }
            }
            if failed > 0 { throw BenchmarkError("\(failed) job(s) failed during the \(label) phase; see the serve log") }
            if ContinuousClock.now - lastReport > .seconds(1) {
                lastReport = .now
                self.progress("\(label): \(finished)/\(expected) fields filled")
            }
            return finished >= expected
        }
    }

    private func maxJobID(_ client: PostgresClient) async throws -> Int64 {
        var value: Int64 = 0
        for try await id in try await client.query("SELECT coalesce(max(id), 0)::bigint FROM ai_jobs", logger: self.logger).decode(Int64.self) { value = id }
        return value
    }

    private func committedTransactions(_ client: PostgresClient) async throws -> Int {
        self.pollCount.increment()
        var value = 0
        for try await commits in try await client.query(
            "SELECT xact_commit::bigint FROM pg_stat_database WHERE datname = current_database()", logger: self.logger
        ).decode(Int.self) { value = commits }
        return value
    }

    private let pollCount = Counter()

    // MARK: Ceiling

    private func pgbenchCeiling(_ registry: TenantRegistry, client: PostgresClient, stack: LocalStack, database: DatabaseSettings, http: HTTPClient) async throws -> Double {
        // Its processor held by the operator: no processor competes with pgbench for its jobs.
        let api = try await self.makeTenant(registry, slug: "pgbench", holdProcessor: true, stack: stack, http: http)
        var tenant = TenantID(0)
        var pipeline = PipelineID(0)
        for try await (t, p) in try await client.query(
            "SELECT t.id, p.id FROM tenants t JOIN pipelines p ON p.tenant_id = t.id WHERE t.slug = 'pgbench'", logger: self.logger
        ).decode((TenantID, PipelineID).self) {
            tenant = t
            pipeline = p
        }
        let hash = APIToken.hash(api.token ?? "").map { String(format: "%02x", $0) }.joined()
        let ceiling = PgbenchCeiling(database: database, tenant: tenant, pipeline: pipeline, tokenHash: hash, clients: self.settings.concurrency, seconds: self.settings.pgbenchSeconds)
        return try await ceiling.run(workDirectory: stack.directory)
    }
}

/// A counter shared by concurrent writers.
final class Counter: Sendable {
    private let value = Mutex(0)

    @discardableResult
    func increment() -> Int { self.value.withLock { $0 += 1; return $0 } }

    func reset() -> Int { self.value.withLock { let old = $0; $0 = 0; return old } }
}
