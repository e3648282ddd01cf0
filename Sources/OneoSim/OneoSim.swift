import ArgumentParser
import Foundation
import Hummingbird
import Logging
import ProviderSimulator

@main
struct OneoSim: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "oneo-ai-sim",
        abstract: "An OpenAI-compatible provider simulator for the demo and the tests (loopback only).",
        discussion: """
            POST /v1/chat/completions answers deterministically from the prompt with a usage block. \
            GET /sim/requests lists what it was sent; DELETE /sim/requests clears that list.

            Faults: a request whose messages hold `[sim-fault: KIND key=value ...]` (or whose \
            X-Sim-Fault header holds `KIND key=value ...`) fails as KIND asks: 429 (retry-after=S), \
            500, 502, 503, 400, 401, quota (429 insufficient_quota), slow (ms=N, then answers), \
            malformed (200, not JSON), no-usage (200 without usage), drop (closes mid-reply), \
            truncated (200, empty answer cut off by the output limit). \
            times=N fails only the first N requests with the same messages. --fault-rate with \
            --fault fails that share of all requests.
            """
    )

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on; 0 lets the kernel pick one (see --port-file).") var port: Int = 18080
    @Option(help: "Write the port it listens on to this file once it does (how a caller learns the kernel's pick).") var portFile: String?
    @Option(help: "Added latency per completion, in milliseconds.") var latencyMs: Int = 0
    @Option(help: "Share of all requests (0 to 1) that fail with --fault.") var faultRate: Double = 0
    @Option(help: "The fault --fault-rate acts out, in the marker's words (e.g. '503' or '429 retry-after=1').") var fault: String = "503"

    func validate() throws {
        guard (0...1).contains(self.faultRate) else { throw ValidationError("--fault-rate must be between 0 and 1") }
        guard SimulatedFault(words: Substring(self.fault)) != nil else {
            throw ValidationError("--fault '\(self.fault)' names no fault; one of \(SimulatedFault.Kind.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard (0...600_000).contains(self.latencyMs) else { throw ValidationError("--latency-ms must be 0...600000") }
    }

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "oneo.sim")
        logger.logLevel = .notice
        let portFile = self.portFile
        let app = ProviderSimulator.application(.init(
            host: self.host, port: self.port, latency: .milliseconds(self.latencyMs), faultRate: self.faultRate,
            fault: SimulatedFault(words: Substring(self.fault))
        ) { port in
            guard let portFile else { return }
            // Written beside and renamed: a reader never sees half a number.
            try? "\(port)\n".write(toFile: portFile + ".new", atomically: false, encoding: .utf8)
            _ = rename(portFile + ".new", portFile)
        }, logger: logger)
        try await app.runService()
    }
}
