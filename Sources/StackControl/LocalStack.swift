import Foundation

/// `oneo-ai serve` and the provider simulator as real processes on loopback ports, started and
/// stopped as an operator would: what the benchmark measures and the integration tests drive.
public final class LocalStack: Sendable {
    public let serve: ManagedProcess
    public let simulator: ManagedProcess
    /// `http://127.0.0.1:PORT`
    public let apiBase: String
    /// `http://127.0.0.1:PORT`; tenants use `simulatorBase + "/v1"` as their base URL.
    public let simulatorBase: String
    public let directory: String

    /// - Parameters:
    ///   - binDirectory: where `oneo-ai` and `oneo-ai-sim` are.
    ///   - environment: for serve (DATABASE_URL, REDIS_URL; absent means embedded).
    public static func start(
        binDirectory: String,
        directory: String,
        environment: [String: String],
        serveOptions: [String] = [],
        simulatorLatencyMilliseconds: Int = 0,
        startTimeout: Duration = .seconds(120)
    ) async throws -> LocalStack {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        // Both bind port 0 and say which port the kernel gave them: a port picked here could be
        // taken by another process before they bind it.
        let simulatorPortFile = directory + "/simulator.port"
        let apiPortFile = directory + "/data/run/api.port"
        for file in [simulatorPortFile, apiPortFile] { try? FileManager.default.removeItem(atPath: file) }
        let simulator = try ManagedProcess(
            binDirectory + "/oneo-ai-sim", ["--port", "0", "--port-file", simulatorPortFile, "--latency-ms", String(simulatorLatencyMilliseconds)],
            logFile: directory + "/simulator.log"
        )
        // `{simulator}` in an option is the simulator's base URL (`--search-url {simulator}/searxng`):
        // serve then starts once the simulator has its port.
        var options = serveOptions
        if options.contains(where: { $0.contains(Self.simulatorPlaceholder) }) {
            var port = 0
            do {
                try await waitUntil("the simulator to report its port", timeout: startTimeout) {
                    guard simulator.isRunning else { throw CommandFailed(command: "oneo-ai-sim", status: -1, output: simulator.output) }
                    guard let reported = Self.port(in: simulatorPortFile) else { return false }
                    port = reported
                    return true
                }
            } catch {
                _ = await simulator.stop()
                throw error
            }
            options = options.map { $0.replacingOccurrences(of: Self.simulatorPlaceholder, with: "http://127.0.0.1:\(port)") }
        }
        let serve = try ManagedProcess(
            binDirectory + "/oneo-ai",
            ["serve", "--data-dir", directory + "/data", "--port", "0"] + options,
            environment: environment,
            logFile: directory + "/serve.log"
        )
        var ports: (api: Int, simulator: Int) = (0, 0)
        do {
            try await waitUntil("the API and the simulator to report their ports", timeout: startTimeout) {
                guard serve.isRunning else { throw CommandFailed(command: "oneo-ai serve", status: -1, output: serve.output) }
                guard simulator.isRunning else { throw CommandFailed(command: "oneo-ai-sim", status: -1, output: simulator.output) }
                guard let api = Self.port(in: apiPortFile), let sim = Self.port(in: simulatorPortFile) else { return false }
                ports = (api, sim)
                return true
            }
        } catch {
            _ = await serve.stop()
            _ = await simulator.stop()
            throw error
        }
        let stack = LocalStack(serve: serve, simulator: simulator, apiBase: "http://127.0.0.1:\(ports.api)", simulatorBase: "http://127.0.0.1:\(ports.simulator)", directory: directory)
        do {
            let api = JSONClient(baseURL: stack.apiBase)
            let sim = JSONClient(baseURL: stack.simulatorBase)
            try await waitUntil("the API and the simulator to answer /healthz", timeout: startTimeout) {
                guard serve.isRunning else { throw CommandFailed(command: "oneo-ai serve", status: -1, output: serve.output) }
                guard simulator.isRunning else { throw CommandFailed(command: "oneo-ai-sim", status: -1, output: simulator.output) }
                let apiUp = (try? await api.get("/healthz"))?.status == 200
                let simUp = (try? await sim.get("/healthz"))?.status == 200
                return apiUp && simUp
            }
        } catch {
            _ = await stack.stop()
            throw error
        }
        return stack
    }

    /// The port a process wrote to `file`, once it has.
    public static func port(in file: String) -> Int? {
        guard let text = try? String(contentsOfFile: file, encoding: .utf8), let port = Int(text.trimmingCharacters(in: .whitespacesAndNewlines)),
              (1...65535).contains(port) else { return nil }
        return port
    }

    /// Stands for the simulator's base URL in serve options.
    public static let simulatorPlaceholder = "{simulator}"

    private init(serve: ManagedProcess, simulator: ManagedProcess, apiBase: String, simulatorBase: String, directory: String) {
        self.serve = serve
        self.simulator = simulator
        self.apiBase = apiBase
        self.simulatorBase = simulatorBase
        self.directory = directory
    }

    /// Stops serve (returning its exit status: 0 when it shut down cleanly) and the simulator.
    public func stop(grace: Duration = .seconds(20)) async -> Int32? {
        let status = await self.serve.stop(grace: grace)
        _ = await self.simulator.stop()
        return status
    }
}
