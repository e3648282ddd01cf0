import ArgumentParser
import Benchmark
import OneoSandbox
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure jobs/s and latency against the PostgreSQL ceiling (pgbench), in one run.",
        discussion: """
            Starts serve (embedded, or on DATABASE_URL / REDIS_URL) and the simulator, creates the tenants, \
            writes the records through the HTTP API, waits for every AI field, then runs pgbench with one \
            job's statements against the same server. Prints a table; --json adds one JSON object as the \
            last line. Build with -c release for figures worth quoting (make bench does).
            """
    )

    @Option(help: "Tenants, each with its own processor.") var tenants: Int = 1
    @Option(help: "Records written per tenant in each phase.") var records: Int = 2000
    @Option(help: "Simulated model latency, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Jobs in flight per processor; also HTTP writers and pgbench clients.") var concurrency: Int = 16
    @Option(help: "Seconds pgbench runs for the ceiling (0 skips it).") var pgbenchSeconds: Int = 10
    @Flag(help: "Skip the phase paced at half the peak rate.") var noPaced: Bool = false
    @Option(help: "Working directory (wiped first).") var dataDir: String = ".oneo/bench"
    @Flag(help: "Also print the figures as one JSON object on the last line.") var json: Bool = false
    @Flag(help: "Measure only the template engine with its guard (expansions/s on one core), no stack.") var templates: Bool = false
    @Flag(help: "With --templates: ns per byte of render + guard on adversarial values (each matcher's alphabet) against ordinary prose, at 1 KB, 64 KB and 1 MB.") var adversarial: Bool = false
    @Flag(help: "Measure the supervisor: processes per configured tenant, RSS, restart latency after kill -9.") var supervisor: Bool = false
    @Flag(help: "Measure the tools: the code interpreter's round trip for print(1) beside a bare python3, an echo call through the router, the executor's memory.") var tools: Bool = false
    @Option(help: "With --tools: calls of each kind.") var toolCalls: Int = 200
    @Option(help: "With --supervisor: tenants configured.") var configuredTenants: Int = 1000
    @Option(help: "With --supervisor: tenants with work (each gets a processor).") var activeTenants: Int = 10
    @Option(help: "With --supervisor: kill -9 of each busy processor, this many times (after the 5th kill in 60 s a child is crash-looping).") var kills: Int = 1

    func validate() throws {
        guard (1...1000).contains(self.tenants) else { throw ValidationError("--tenants must be 1...1000") }
        guard (1...1_000_000).contains(self.records) else { throw ValidationError("--records must be 1...1000000") }
        guard (0...60_000).contains(self.latencyMs) else { throw ValidationError("--latency-ms must be 0...60000") }
        guard (1...1024).contains(self.concurrency) else { throw ValidationError("--concurrency must be 1...1024") }
        guard (1...100_000).contains(self.configuredTenants), (1...min(100, self.configuredTenants)).contains(self.activeTenants) else {
            throw ValidationError("--configured-tenants must be 1...100000 and --active-tenants 1...100 (and no more than configured)")
        }
        guard (1...5).contains(self.kills) else { throw ValidationError("--kills must be 1...5") }
        guard !self.adversarial || self.templates else { throw ValidationError("--adversarial goes with --templates") }
        guard (10...100_000).contains(self.toolCalls) else { throw ValidationError("--tool-calls must be 10...100000") }
    }

    /// The report as one JSON object, sorted keys, on a line of its own (the last).
    static func printJSON(_ report: some Encodable) throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        print(String(decoding: try encoder.encode(report), as: UTF8.self))
    }

    func run() async throws {
        LogSetup.bootstrap()
        if self.templates, self.adversarial {
            FileHandle.standardError.write(Data("  rendering \(AdversarialBenchmark.inputs.count + 2) inputs at 1 KB, 64 KB and 1 MB, best of three each…\n".utf8))
            let report = try AdversarialBenchmark().run()
            print(report.table)
            if self.json { try Self.printJSON(report) }
            return
        }
        if self.templates {
            let report = try TemplateBenchmark().run()
            print(String(format: "template engine: %d-field record with {*}, guard on: %.0f expansions/s on one core, best round (median %.0f)",
                         report.fields, report.expansions_per_sec, report.median_expansions_per_sec))
            print(String(format: "  per second of the rendering thread's CPU time; %d-byte prompt, %d redaction(s) each", report.prompt_bytes, report.redactions_per_expansion))
            print(String(format: "without the detectors: %.0f expansions/s; the guard's share of the time: %.0f%%", report.without_guard_per_sec, report.guard_share * 100))
            if self.json { try Self.printJSON(report) }
            return
        }
        let executable = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        if self.tools {
            let directory = SandboxDirectory.locate(executable: executable, environment: ProcessInfo.processInfo.environment)
            let report = try ToolBenchmark(
                binDirectory: (executable as NSString).deletingLastPathComponent, policy: SandboxDirectory.policyPath(tool: "code_interpreter", in: directory),
                calls: self.toolCalls, progress: { FileHandle.standardError.write(Data("  \($0)\n".utf8)) }
            ).run()
            print(String(format: "code_interpreter print(1) round trip: p50 %.2f ms, p99 %.2f ms (warm pool, one fresh jail per call)", report.code_interpreter_p50_ms, report.code_interpreter_p99_ms))
            print(String(format: "bare python3 -c 'print(1)':          p50 %.2f ms, p99 %.2f ms; ratio at p50 %.2f×", report.bare_python_p50_ms, report.bare_python_p99_ms, report.ratio_p50))
            print(String(format: "echo tool call through the router:  p50 %.3f ms, p99 %.3f ms (straight to the executor: p50 %.3f ms)", report.echo_routed_p50_ms, report.echo_routed_p99_ms, report.echo_direct_p50_ms))
            print("memory: executor \(report.executor_rss_kib) KiB RSS, a warm jail's interpreter \(report.warm_jail_rss_kib) KiB")
            print(String(format: "web_search through the router:      p50 %.2f ms, p99 %.2f ms (a fresh jail per call, the connection brokered, a local backend)", report.web_search_p50_ms, report.web_search_p99_ms))
            print("memory: web_search launcher \(report.web_search_launcher_rss_kib) KiB RSS, its waiting jail \(report.web_search_jail_rss_kib) KiB")
            if self.json { try Self.printJSON(report) }
            return
        }
        if self.supervisor {
            let benchmark = SupervisorBenchmark(
                settings: .init(
                    configuredTenants: self.configuredTenants, activeTenants: self.activeTenants, killsPerTenant: self.kills,
                    directory: DataDirectory(self.dataDir).root, binDirectory: (executable as NSString).deletingLastPathComponent
                ),
                logger: Logger(label: "oneo.bench")
            ) { line in
                FileHandle.standardError.write(Data("  \(line)\n".utf8))
            }
            let report = try await benchmark.run()
            print(report.table)
            if self.json { try Self.printJSON(report) }
            return
        }
        let settings = BenchmarkSettings(
            tenants: self.tenants, recordsPerTenant: self.records, latencyMilliseconds: self.latencyMs,
            concurrency: self.concurrency, pgbenchSeconds: self.pgbenchSeconds, pacedPhase: !self.noPaced,
            directory: DataDirectory(self.dataDir).root, binDirectory: (executable as NSString).deletingLastPathComponent
        )
        let runner = BenchmarkRunner(settings: settings, logger: Logger(label: "oneo.bench")) { line in
            FileHandle.standardError.write(Data("  \(line)\n".utf8))
        }
        let report = try await runner.run()
        print(report.table)
        if self.json { print(report.json) }
    }
}
