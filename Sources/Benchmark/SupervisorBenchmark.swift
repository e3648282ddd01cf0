import AsyncHTTPClient
import Foundation
public import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO
import StackControl
#if canImport(Glibc)
import Glibc
#endif

/// The supervisor's figures: how many processes 1,000 configured tenants cost when 10 have
/// work, how much memory the supervisor and an idle processor hold, and how long a killed
/// processor takes to be back (kill -9 → its successor's ready frame, as `status` shows it).
public struct SupervisorBenchmark: Sendable {
    public struct Settings: Sendable {
        public var configuredTenants: Int
        public var activeTenants: Int
        /// Each active tenant's processor is killed this many times, one kill at a time.
        public var killsPerTenant: Int
        public var directory: String
        public var binDirectory: String

        public init(configuredTenants: Int, activeTenants: Int, killsPerTenant: Int, directory: String, binDirectory: String) {
            self.configuredTenants = configuredTenants
            self.activeTenants = activeTenants
            self.killsPerTenant = killsPerTenant
            self.directory = directory
            self.binDirectory = binDirectory
        }
    }

    public struct Report: Sendable, Codable {
        public var configured_tenants: Int
        public var active_tenants: Int
        public var processor_processes: Int
        public var supervisor_tree_processes: Int
        public var restart_samples: Int
        public var restart_p50_ms: Double
        public var restart_p99_ms: Double
        public var restart_max_ms: Double
        public var supervisor_rss_mib: Double
        public var idle_processor_rss_mib: Double
        public var api_rss_mib: Double
        public var supervisor_private_mib: Double
        public var idle_processor_private_mib: Double

        public var table: String {
            """
            tenants configured / with work:     \(self.configured_tenants) / \(self.active_tenants)
            processor processes:                \(self.processor_processes) (whole serve tree: \(self.supervisor_tree_processes) processes, PostgreSQL's included)
            restart, kill -9 → ready (n=\(self.restart_samples)):     p50 \(Self.format(self.restart_p50_ms)) ms, p99 \(Self.format(self.restart_p99_ms)) ms, max \(Self.format(self.restart_max_ms)) ms (includes the 80-100 ms first backoff)
            supervisor RSS:                     \(Self.format(self.supervisor_rss_mib)) MiB (private: \(Self.format(self.supervisor_private_mib)) MiB)
            idle processor RSS (largest):       \(Self.format(self.idle_processor_rss_mib)) MiB (private: \(Self.format(self.idle_processor_private_mib)) MiB, what one more processor costs)
            API RSS:                            \(Self.format(self.api_rss_mib)) MiB
            """
        }

        static func format(_ value: Double) -> String { String(format: "%.1f", value) }
    }

    public let settings: Settings
    public let logger: Logger
    public let progress: @Sendable (String) -> Void

    public init(settings: Settings, logger: Logger, progress: @escaping @Sendable (String) -> Void) {
        self.settings = settings
        self.logger = logger
        self.progress = progress
    }

    public func run() async throws -> Report {
        try await BenchStack.with(
            directory: self.settings.directory, binDirectory: self.settings.binDirectory, serveOptions: ["--idle-timeout", "3600"],
            simulatorLatencyMilliseconds: 0, httpConnections: 8, logger: self.logger, progress: self.progress
        ) { parts in
            try await self.measure(parts)
        }
    }

    private func measure(_ parts: BenchStack.Parts) async throws -> Report {
        let (stack, client, http) = (parts.stack, parts.database, parts.http)
        let registry = TenantRegistry(database: client, sealer: try KeySealer(masterKeyFile: DataDirectory(stack.directory + "/data").masterKeyFile))
        let control = DataDirectory(stack.directory + "/data").controlSocket

        let idle = self.settings.configuredTenants - self.settings.activeTenants
        self.progress("configuring \(idle) tenants without work and \(self.settings.activeTenants) with a pipeline")
        try await client.query(
            """
            INSERT INTO tenants (slug, name, provider_base_url)
            SELECT 'idle-' || g, 'Idle tenant ' || g, \(stack.simulatorBase + "/v1") FROM generate_series(1, \(idle)) g
            """,
            logger: self.logger
        )
        var active: [(slug: String, api: JSONClient)] = []
        for index in 1...self.settings.activeTenants {
            let slug = String(format: "busy-%02d", index)
            active.append((slug, try await BenchTenant.make(registry, slug: slug, holdProcessor: false, stack: stack, http: http, logger: self.logger)))
        }
        self.progress("one record per busy tenant; waiting for their processors and jobs")
        for tenant in active {
            try await BenchTenant.expect(201, tenant.api.post("/pipelines/leads/records/", ["data": ["name": "Ada", "company": "Initech"]]))
        }
        try await waitUntil("every busy tenant's job to complete", timeout: .seconds(120), interval: .milliseconds(100)) {
            var done = 0
            for try await count in try await client.query("SELECT count(*)::bigint FROM ai_jobs WHERE status = 'completed'", logger: self.logger).decode(Int64.self) {
                done = Int(count)
            }
            return done == self.settings.activeTenants
        }
        // Let the processors go quiet (nothing in flight, heartbeats only) before reading memory.
        try await Task.sleep(for: .seconds(2))
        let sampler = ProcessSampler(supervisor: stack.serve.pid, simulator: stack.simulator.pid)
        let sample = sampler.sample()

        var samples: [Double] = []
        self.progress("restart latency: kill -9 of each busy processor, \(self.settings.killsPerTenant) time(s) each")
        for _ in 0..<self.settings.killsPerTenant {
            for tenant in active {
                samples.append(try await self.restartMilliseconds(of: "processor:\(tenant.slug)", control: control))
            }
        }
        samples.sort()
        return Report(
            configured_tenants: self.settings.configuredTenants,
            active_tenants: self.settings.activeTenants,
            processor_processes: sample.processCount[.processor] ?? 0,
            supervisor_tree_processes: ProcessKind.allCases.filter { $0 != .simulator }.reduce(0) { $0 + (sample.processCount[$1] ?? 0) },
            restart_samples: samples.count,
            restart_p50_ms: Self.percentile(samples, 0.5),
            restart_p99_ms: Self.percentile(samples, 0.99),
            restart_max_ms: samples.last ?? 0,
            supervisor_rss_mib: sample.currentRSSMiB[.supervisor] ?? 0,
            idle_processor_rss_mib: sample.currentRSSMiB[.processor] ?? 0,
            api_rss_mib: sample.currentRSSMiB[.api] ?? 0,
            supervisor_private_mib: sample.privateMiB[.supervisor] ?? 0,
            idle_processor_private_mib: sample.privateMiB[.processor] ?? 0
        )
}

    /// Kills the child and polls `status` every 2 ms until a new process of it is running.
    private func restartMilliseconds(of name: String, control: String) async throws -> Double {
        let before = try await self.child(name, control: control)
        guard let pid = before?.pid, before?.state == .running else { throw BenchmarkError("\(name) is not running: \(String(describing: before))") }
        let killed = ContinuousClock.now
        kill(pid, SIGKILL)
        try await waitUntil("\(name) to be back", timeout: .seconds(30), interval: .milliseconds(2)) {
            let child = try await self.child(name, control: control)
            return child?.state == .running && child?.pid != nil && child?.pid != pid
        }
        return Double((ContinuousClock.now - killed) / .microseconds(1)) / 1000
    }

    private func child(_ name: String, control: String) async throws -> ChildStatus? {
        let reply = try await ControlClient.send(ControlRequest(command: .status), path: control, timeout: .seconds(10))
        if let error = reply.error { throw error }
        return reply.children?.first { $0.name == name }
    }

    static func percentile(_ sorted: [Double], _ fraction: Double) -> Double {
        guard !sorted.isEmpty else { return 0 }
        let rank = Int((fraction * Double(sorted.count)).rounded(.up)) - 1
        return sorted[min(max(rank, 0), sorted.count - 1)]
    }
}
