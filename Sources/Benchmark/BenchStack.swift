import AsyncHTTPClient
import Foundation
import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO
import StackControl

/// The stack every benchmark measures: a fresh serve (embedded, or on DATABASE_URL / REDIS_URL)
/// and the simulator under `directory`, an HTTP client, and a database client on the same
/// PostgreSQL; stopped afterwards, with serve required to exit 0.
enum BenchStack {
    /// The benchmark's own connections, which the engine's connection count leaves out.
    static let applicationName = "oneo-bench"
    struct Parts {
        let stack: LocalStack
        let database: PostgresClient
        let databaseSettings: DatabaseSettings
        let http: HTTPClient
    }

    static func with<Result: Sendable>(
        directory: String, binDirectory: String, serveOptions: [String], simulatorLatencyMilliseconds: Int, httpConnections: Int,
        logger: Logger, progress: @Sendable (String) -> Void,
        _ body: (Parts) async throws -> Result
    ) async throws -> Result {
        let environment = ProcessInfo.processInfo.environment
        var serveEnvironment: [String: String] = [:]
        let external = environment["DATABASE_URL"].flatMap { $0.isEmpty ? nil : $0 }
        if let external { serveEnvironment["DATABASE_URL"] = external }
        if let redis = environment["REDIS_URL"], !redis.isEmpty { serveEnvironment["REDIS_URL"] = redis }
        // The operator's tunables reach serve as they would in production: a run with budgets off
        // is `ONEO_BUDGETS_FIELD_LIMIT_CENTS=0 oneo-ai bench`.
        for (name, value) in environment where name.hasPrefix("ONEO_") { serveEnvironment[name] = value }
        try? FileManager.default.removeItem(atPath: directory)
        progress("starting serve (\(external == nil ? "embedded PostgreSQL and Redis" : "DATABASE_URL")) and the simulator at \(simulatorLatencyMilliseconds) ms")
        let stack = try await LocalStack.start(
            binDirectory: binDirectory, directory: directory, environment: serveEnvironment,
            serveOptions: serveOptions, simulatorLatencyMilliseconds: simulatorLatencyMilliseconds
        )
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = .init(idleTimeout: .seconds(60), concurrentHTTP1ConnectionsPerHostSoftLimit: httpConnections)
        let http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
        do {
            let settings = try external.map { try DatabaseSettings(url: $0) } ?? DataDirectory(directory + "/data").embeddedDatabase
            let client = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: 2, applicationName: BenchStack.applicationName), backgroundLogger: logger)
            let result = try await withThrowingTaskGroup(of: Void.self) { group in
                group.addTask { await client.run() }
                defer { group.cancelAll() }
                return try await body(Parts(stack: stack, database: client, databaseSettings: settings, http: http))
            }
            try await http.shutdown()
            // A thousand processors drain, then PostgreSQL checkpoints: give it time.
            let status = await stack.stop(grace: .seconds(120))
            guard status == 0 else { throw BenchmarkError("serve exited with \(status.map(String.init) ?? "?") at shutdown; see \(stack.directory)/serve.log") }
            return result
        } catch {
            try? await http.shutdown()
            _ = await stack.stop()
            throw error
        }
    }
}
