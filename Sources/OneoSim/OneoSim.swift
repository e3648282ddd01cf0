import ArgumentParser
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
            """
    )

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on.") var port: Int = 18080
    @Option(help: "Added latency per completion, in milliseconds.") var latencyMs: Int = 0

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "oneo.sim")
        logger.logLevel = .notice
        let app = ProviderSimulator.application(.init(host: self.host, port: self.port, latency: .milliseconds(self.latencyMs)), logger: logger)
        try await app.runService()
    }
}
