import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import StackControl
import Testing

/// `oneo-ai bench` runs end to end at a tiny size. This proves the command works; it times nothing.
@Suite("benchmark command", .timeLimit(.minutes(5)))
struct BenchmarkCommandTests {
    @Test("bench at a tiny size fills every field and reports every figure as JSON on its last line")
    func tinyRun() async throws {
        let directory = try TestServices.temporaryDirectory("oneo-bench")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // Embedded mode (ManagedProcess clears DATABASE_URL and REDIS_URL), as on a fresh machine.
        let output = try await ManagedProcess.run(
            TestServices.executable("oneo-ai"),
            ["bench", "--tenants", "2", "--records", "5", "--concurrency", "4", "--pgbench-seconds", "1", "--data-dir", directory + "/run", "--json"],
            logFile: directory + "/bench.log"
        )
        let last = try #require(output.split(separator: "\n").last.map(String.init))
        let report = try JSONValue.parse(Array(last.utf8))
        #expect(report["jobs"]?.integerValue == 10, "2 tenants × 5 records, warm-up excluded")
        for key in ["jobs_per_sec", "p50_ms", "p95_ms", "p99_ms", "pg_commits_per_job", "pgbench_jobs_per_sec", "ratio_to_pgbench"] {
            let value = report[key]
            #expect(value != nil && value != .null, "\(key) is reported")
        }
        #expect((report["jobs_per_sec"].flatMap { if case .double(let v) = $0 { v } else { $0.integerValue.map(Double.init) } } ?? 0) > 0)
        #expect(report["processes"]?["processor"]?.integerValue == 2, "one processor per tenant")
        for kind in ["supervisor", "api", "processor", "postgres", "redis", "simulator"] {
            #expect(report["rss_mib"]?[kind] != nil, "peak RSS of \(kind) is reported")
        }
        #expect(output.contains("jobs/s (first write → last field)"), "the table is printed")
        // The cache phase repeats one record per tenant: all but each tenant's first are hits,
        // through the embedded Redis as each processor's own ACL user.
        #expect((report["cache_hits"]?.integerValue ?? 0) >= 6, "cache hits: \(report["cache_hits"] ?? .null)")
        #expect(report["cache_hit_latency"]?["p50_ms"] != nil)
    }

    @Test("bench --supervisor at a tiny size: a processor per busy tenant only, and a restart measured per kill")
    func tinySupervisorRun() async throws {
        let directory = try TestServices.temporaryDirectory("oneo-bench-supervisor")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try await ManagedProcess.run(
            TestServices.executable("oneo-ai"),
            ["bench", "--supervisor", "--configured-tenants", "30", "--active-tenants", "2", "--data-dir", directory + "/run", "--json"],
            logFile: directory + "/bench.log"
        )
        let last = try #require(output.split(separator: "\n").last.map(String.init))
        let report = try JSONValue.parse(Array(last.utf8))
        #expect(report["configured_tenants"]?.integerValue == 30)
        #expect(report["processor_processes"]?.integerValue == 2, "30 configured, 2 with work: 2 processors")
        #expect(report["restart_samples"]?.integerValue == 2)
        for key in ["restart_p50_ms", "restart_p99_ms", "supervisor_rss_mib", "idle_processor_rss_mib", "idle_processor_private_mib"] {
            let value = report[key].flatMap { if case .double(let number) = $0 { number } else { $0.integerValue.map(Double.init) } }
            #expect((value ?? 0) > 0, "\(key) is reported")
        }
        #expect(output.contains("processor processes:"), "the table is printed")
    }

    @Test("bench --templates renders the 50-field record with the guard on and reports both variants")
    func templateRun() async throws {
        let directory = try TestServices.temporaryDirectory("oneo-bench-templates")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        // It measures 6 s of its own CPU time: on two cores shared with the rest of the suite
        // (and its jails) that can take minutes of wall-clock time.
        let output = try await ManagedProcess.run(TestServices.executable("oneo-ai"), ["bench", "--templates", "--json"], logFile: directory + "/bench.log", timeout: .seconds(240))
        let last = try #require(output.split(separator: "\n").last.map(String.init))
        let report = try JSONValue.parse(Array(last.utf8))
        #expect(report["fields"]?.integerValue == 50)
        #expect(report["redactions_per_expansion"]?.integerValue == 1, "the card number in a text value is redacted")
        for key in ["expansions_per_sec", "median_expansions_per_sec", "without_guard_per_sec"] {
            let value = report[key].flatMap { if case .double(let number) = $0 { number } else { $0.integerValue.map(Double.init) } }
            #expect((value ?? 0) > 0, "\(key) is reported")
        }
        #expect(output.contains("guard on:"), "the summary is printed")
    }
}
