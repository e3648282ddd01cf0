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
            """
    )

    @Option(help: "Address to listen on.") var host: String = "127.0.0.1"
    @Option(help: "Port to listen on; 0 lets the kernel pick one (see --port-file).") var port: Int = 18080
    @Option(help: "Write the port it listens on to this file once it does (how a caller learns the kernel's pick).") var portFile: String?
    @Option(help: "Added latency per completion, in milliseconds.") var latencyMs: Int = 0

    func run() async throws {
        LoggingSystem.bootstrap { StreamLogHandler.standardError(label: $0) }
        var logger = Logger(label: "oneo.sim")
        logger.logLevel = .notice
        let portFile = self.portFile
        let app = ProviderSimulator.application(.init(host: self.host, port: self.port, latency: .milliseconds(self.latencyMs)) { port in
            guard let portFile else { return }
            // Written beside and renamed: a reader never sees half a number.
            try? "\(port)\n".write(toFile: portFile + ".new", atomically: false, encoding: .utf8)
            _ = rename(portFile + ".new", portFile)
        }, logger: logger)
        try await app.runService()
    }
}
