import Foundation

/// The figures of one run, printed as a table and, with --json, as one JSON object.
public struct BenchmarkReport: Sendable, Encodable {
    public struct Latency: Sendable, Encodable {
        public var p50_ms: Double
        public var p95_ms: Double
        public var p99_ms: Double
    }

    public var tenants: Int
    public var records_per_tenant: Int
    public var latency_ms_setting: Int
    public var concurrency: Int
    public var jobs: Int
    public var jobs_per_sec: Double
    /// Latency at half the peak rate when the paced phase ran, else at the peak.
    public var p50_ms: Double
    public var p95_ms: Double
    public var p99_ms: Double
    public var peak_latency: Latency
    public var paced_latency: Latency?
    public var paced_rate_per_sec: Double?
    public var pg_commits_per_job: Double
    /// The engine's PostgreSQL connections (API, queue manager, supervisor) at most, at peak.
    public var pg_connections_peak: Int
    public var cpu_s_per_job: [String: Double]
    public var rss_mib: [String: Double]
    public var processes: [String: Int]
    public var pgbench_jobs_per_sec: Double?
    public var ratio_to_pgbench: Double?
    /// The cache phase: records whose prompt repeats, answered from the tenant's result cache.
    public var cache_hits: Int? = nil
    /// Record write → field filled, for cache hits.
    public var cache_hit_latency: Latency? = nil
    /// The processor's own time for a hit (lookup to result), p50, whole milliseconds.
    public var cache_hit_processing_p50_ms: Double? = nil

    public var json: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return (try? encoder.encode(self)).map { String(decoding: $0, as: UTF8.self) } ?? "{}"
    }

    public var table: String {
        func number(_ value: Double, _ digits: Int = 1) -> String { String(format: "%.\(digits)f", value) }
        var lines: [String] = []
        lines.append("oneo-ai bench: \(self.tenants) tenant(s) × \(self.records_per_tenant) records, model latency \(self.latency_ms_setting) ms, concurrency \(self.concurrency)")
        lines.append("")
        lines.append(String(format: "  %-38@ %@", "jobs" as NSString, "\(self.jobs)" as NSString))
        let rows: [(String, String)] = [
            ("jobs/s (first write → last field)", number(self.jobs_per_sec)),
            ("pgbench ceiling, jobs/s (one at a time)", self.pgbench_jobs_per_sec.map { number($0) } ?? "n/a"),
            ("ratio to pgbench", self.ratio_to_pgbench.map { number($0, 2) + "×" } ?? "n/a"),
            ("latency at peak p50 / p95 / p99, ms", "\(number(self.peak_latency.p50_ms)) / \(number(self.peak_latency.p95_ms)) / \(number(self.peak_latency.p99_ms))"),
            ("latency at half peak p50 / p95 / p99, ms", self.paced_latency.map { "\(number($0.p50_ms)) / \(number($0.p95_ms)) / \(number($0.p99_ms)) at \(number(self.paced_rate_per_sec ?? 0)) rec/s" } ?? "not run"),
            ("postgres commits per job", number(self.pg_commits_per_job, 2)),
            ("postgres connections of the engine, peak", "\(self.pg_connections_peak)"),
            ("cache hits: write → filled p50 / p95 / p99, ms", self.cache_hit_latency.map { "\(number($0.p50_ms)) / \(number($0.p95_ms)) / \(number($0.p99_ms)) over \(self.cache_hits ?? 0) hits" } ?? "not run"),
            ("cache hit in the processor, p50 ms", self.cache_hit_processing_p50_ms.map { number($0) } ?? "n/a"),
        ]
        for (label, value) in rows { lines.append("  " + label.padding(toLength: 42, withPad: " ", startingAt: 0) + value) }
        lines.append("")
        lines.append("  process kind   processes   CPU ms/job   peak RSS MiB (largest process)")
        for kind in ProcessKind.allCases {
            let cpu = self.cpu_s_per_job[kind.rawValue].map { number($0 * 1000, 3) } ?? "n/a"
            let rss = self.rss_mib[kind.rawValue].map { number($0) } ?? "n/a"
            let count = self.processes[kind.rawValue].map(String.init) ?? "0"
            lines.append("  " + kind.rawValue.padding(toLength: 15, withPad: " ", startingAt: 0) + count.padding(toLength: 12, withPad: " ", startingAt: 0) + cpu.padding(toLength: 13, withPad: " ", startingAt: 0) + rss)
        }
        return lines.joined(separator: "\n")
    }
}
