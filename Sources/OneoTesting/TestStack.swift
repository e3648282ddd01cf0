import Foundation
public import StackControl
public import OneoCore
public import PostgresNIO
public import Logging

/// A whole oneo-ai for one test: its own database on the test PostgreSQL, a provider simulator,
/// `oneo-ai serve` as a real process tree, and a tenant with an API token made through the CLI.
public final class TestStack: Sendable {
    public let databaseName: String
    public let databaseURL: String
    public let directory: String
    public let api: JSONClient
    public let simulator: JSONClient
    public let local: LocalStack
    public let tenant: String

    /// - Parameter tenantActive: false adds the tenant suspended, so no processor runs its jobs
    ///   until the test activates it.
    public static func start(tenant: String = "acme", tenantActive: Bool = true, providerKey: String = "test-provider-key-1") async throws -> TestStack {
        let name = "oneo_test_\(UInt32.random(in: 0 ... .max))"
        try await Self.admin { client, logger in
            try await client.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        let databaseURL = try TestServices.databaseURL(named: name)
        let environment = ["DATABASE_URL": databaseURL, "REDIS_URL": try TestServices.redisURL(), "ONEO_LOG_LEVEL": "debug"]
        let local = try await LocalStack.start(binDirectory: TestServices.binDirectory, directory: directory, environment: environment, startTimeout: .seconds(60))
        let simulator = JSONClient(baseURL: local.simulatorBase)
        let keyFile = directory + "/provider.key"
        FileManager.default.createFile(atPath: keyFile, contents: Data(providerKey.utf8), attributes: [.posixPermissions: 0o600])
        let cli = TestServices.executable("oneo-ai")
        _ = try await ManagedProcess.run(
            cli,
            ["tenant", "add", tenant, "--name", "Tenant \(tenant)", "--data-dir", directory + "/data", "--api-key-file", keyFile,
             "--base-url", local.simulatorBase + "/v1"] + (tenantActive ? [] : ["--suspended"]),
            environment: environment, logFile: directory + "/cli-tenant.log"
        )
        let output = try await ManagedProcess.run(
            cli, ["token", "create", "--tenant", tenant, "--permissions", "read,create", "--data-dir", directory + "/data"],
            environment: environment, logFile: directory + "/cli-token.log"
        )
        guard let token = output.split(separator: "\n").last(where: { $0.hasPrefix("oneo_") }).map(String.init) else {
            throw CommandFailed(command: "oneo-ai token create", status: 0, output: output)
        }
        return TestStack(
            databaseName: name, databaseURL: databaseURL, directory: directory,
            api: JSONClient(baseURL: local.apiBase + "/api/v1", token: token),
            simulator: simulator, local: local, tenant: tenant
        )
    }

    private init(databaseName: String, databaseURL: String, directory: String, api: JSONClient, simulator: JSONClient, local: LocalStack, tenant: String) {
        self.databaseName = databaseName
        self.databaseURL = databaseURL
        self.directory = directory
        self.api = api
        self.simulator = simulator
        self.local = local
        self.tenant = tenant
    }

    public var serve: ManagedProcess { self.local.serve }

    /// Starts a stack, runs `body` on it, and stops it; when `body` fails, the serve log is attached
    /// to the failure. Returns serve's exit status (0 when it shut down cleanly).
    @discardableResult
    public static func with(
        tenantActive: Bool = true,
        _ body: (TestStack) async throws -> Void
    ) async throws -> Int32? {
        let stack = try await TestStack.start(tenantActive: tenantActive)
        do {
            try await body(stack)
        } catch {
            try await stack.stop()
            throw StackFailure(underlying: error, serveLog: String(stack.serve.output.suffix(4000)))
        }
        return try await stack.stop()
    }

    /// Stops serve (which must exit 0) and the simulator, and drops the database.
    @discardableResult
    public func stop() async throws -> Int32? {
        let status = await self.local.stop()
        try await Self.admin { client, logger in
            try await client.query("DROP DATABASE IF EXISTS \(unescaped: self.databaseName) WITH (FORCE)", logger: logger)
        }
        return status
    }

    /// The request bodies the simulator received, parsed.
    public func providerRequests() async throws -> [(authorization: String?, body: String)] {
        let response = try await self.simulator.get("/sim/requests")
        return (response.body.arrayValue ?? []).map { ($0["authorization"]?.stringValue, $0["body"]?.stringValue ?? "") }
    }

    /// Runs `body` against this stack's database, as a test inspecting what was written.
    public func withDatabase<Result: Sendable>(_ body: @Sendable (PostgresClient, Logger) async throws -> Result) async throws -> Result {
        try await Self.database(self.databaseName, body)
    }

    /// Counts rows of a query that returns one bigint.
    public func count(_ query: PostgresQuery) async throws -> Int {
        try await self.withDatabase { client, logger in
            var total = 0
            for try await value in try await client.query(query, logger: logger).decode(Int.self) { total = value }
            return total
        }
    }

    static func admin<Result: Sendable>(_ body: @Sendable (PostgresClient, Logger) async throws -> Result) async throws -> Result {
        try await self.database(nil, body)
    }

    public static func database<Result: Sendable>(_ name: String?, _ body: @Sendable (PostgresClient, Logger) async throws -> Result) async throws -> Result {
        var settings = try DatabaseSettings(url: try TestServices.databaseURL())
        if let name { settings = settings.withDatabase(name) }
        let logger = Logger(label: "oneo.test")
        let client = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: 2))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client, logger)
        }
    }
}

/// A failed test body, with the end of the serve log that explains it.
public struct StackFailure: Error, CustomStringConvertible {
    public let underlying: any Error
    public let serveLog: String
    public var description: String { "\(self.underlying)\n--- serve log (end) ---\n\(self.serveLog)" }
}
