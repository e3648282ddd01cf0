import Foundation
public import StackControl
public import OneoWire
public import OneoStore
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
    /// What serve and CLI commands run with: the test database and Redis.
    public let environment: [String: String]

    /// - Parameter processorHeld: the operator stops the tenant's processor (`tenant stop`) before
    ///   the test begins, so its jobs stay pending until the test starts it (`tenant start`).
    ///   - serveOptions: extra `serve` options (`--idle-timeout 1`).
    ///   - simulatorLatencyMilliseconds: how long each provider call takes.
    public static func start(
        tenant: String = "acme", processorHeld: Bool = false, providerKey: String = "test-provider-key-1",
        serveOptions: [String] = [], simulatorLatencyMilliseconds: Int = 0, tunables: [String: String] = [:]
    ) async throws -> TestStack {
        let name = "oneo_test_\(UInt32.random(in: 0 ... .max))"
        try await Self.admin { client, logger in
            _ = try await client.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent(name).path
        let databaseURL = try TestServices.databaseURL(named: name)
        // Tunables go in as the operator's ONEO_* variables (`ONEO_QUEUE_RETRY_DELAY_MS`).
        // One executor per tool (serve's default is 2): suites run side by side on two cores.
        let environment = ["DATABASE_URL": databaseURL, "REDIS_URL": try TestServices.redisURL(), "ONEO_LOG_LEVEL": "debug", "ONEO_TOOLS_EXECUTORS": "1"]
            .merging(tunables) { _, tunable in tunable }
        let local = try await LocalStack.start(
            binDirectory: TestServices.binDirectory, directory: directory, environment: environment,
            serveOptions: serveOptions, simulatorLatencyMilliseconds: simulatorLatencyMilliseconds, startTimeout: .seconds(60)
        )
        let simulator = JSONClient(baseURL: local.simulatorBase)
        let token = try await Self.addTenant(
            tenant, providerKey: providerKey, directory: directory, simulatorBase: local.simulatorBase, environment: environment
        )
        if processorHeld {
            _ = try await ManagedProcess.run(
                TestServices.executable("oneo-ai"), ["tenant", "stop", tenant, "--data-dir", directory + "/data"],
                environment: environment, logFile: directory + "/cli-hold-\(tenant).log"
            )
        }
        return TestStack(
            databaseName: name, databaseURL: databaseURL, directory: directory,
            api: JSONClient(baseURL: local.apiBase + "/api/v1", token: token),
            simulator: simulator, local: local, tenant: tenant, environment: environment
        )
    }

    /// Adds a tenant through the CLI, as an operator would, and returns an API token for it.
    private static func addTenant(_ slug: String, providerKey: String, directory: String, simulatorBase: String, environment: [String: String]) async throws -> String {
        let keyFile = directory + "/provider-\(slug).key"
        guard FileManager.default.createFile(atPath: keyFile, contents: Data(providerKey.utf8), attributes: [.posixPermissions: 0o600]) else {
            throw CocoaError(.fileWriteUnknown, userInfo: [NSFilePathErrorKey: keyFile])
        }
        let cli = TestServices.executable("oneo-ai")
        _ = try await ManagedProcess.run(
            cli,
            ["tenant", "add", slug, "--name", "Tenant \(slug)", "--data-dir", directory + "/data", "--api-key-file", keyFile,
             "--base-url", simulatorBase + "/v1"],
            environment: environment, logFile: directory + "/cli-tenant-\(slug).log"
        )
        let output = try await ManagedProcess.run(
            cli, ["token", "create", "--tenant", slug, "--permissions", "read,create", "--data-dir", directory + "/data"],
            environment: environment, logFile: directory + "/cli-token-\(slug).log"
        )
        guard let token = output.split(separator: "\n").last(where: { $0.hasPrefix("oneo_") }).map(String.init) else {
            throw CommandFailed(command: "oneo-ai token create", status: 0, output: output)
        }
        return token
    }

    /// Another tenant on this stack; returns its API client.
    public func addTenant(_ slug: String, providerKey: String) async throws -> JSONClient {
        let token = try await Self.addTenant(
            slug, providerKey: providerKey, directory: self.directory, simulatorBase: self.local.simulatorBase, environment: self.environment
        )
        return JSONClient(baseURL: self.local.apiBase + "/api/v1", token: token)
    }

    /// Runs `oneo-ai ARGS --data-dir <this stack's>` and returns its output; throws on non-zero.
    @discardableResult
    public func cli(_ arguments: [String]) async throws -> String {
        try await ManagedProcess.run(
            TestServices.executable("oneo-ai"), arguments + ["--data-dir", self.directory + "/data"],
            environment: self.environment, logFile: self.directory + "/cli-\(UInt32.random(in: 0 ... .max)).log"
        )
    }

    /// Every child of serve, from the control socket.
    public func status() async throws -> [ChildStatus] {
        let reply = try await ControlClient.send(ControlRequest(command: .status), path: DataDirectory(self.directory + "/data").controlSocket, timeout: .seconds(10))
        if let error = reply.error { throw error }
        return reply.children ?? []
    }

    /// The status row of one child (`api`, `processor:acme`).
    public func child(_ name: String) async throws -> ChildStatus? {
        try await self.status().first { $0.name == name }
    }

    private init(databaseName: String, databaseURL: String, directory: String, api: JSONClient, simulator: JSONClient, local: LocalStack, tenant: String, environment: [String: String]) {
        self.databaseName = databaseName
        self.databaseURL = databaseURL
        self.directory = directory
        self.api = api
        self.simulator = simulator
        self.local = local
        self.tenant = tenant
        self.environment = environment
    }

    public var serve: ManagedProcess { self.local.serve }

    /// Starts a stack, runs `body` on it, and stops it; when `body` fails, the serve log is attached
    /// to the failure. Returns serve's exit status (0 when it shut down cleanly).
    @discardableResult
    public static func with(
        processorHeld: Bool = false,
        serveOptions: [String] = [],
        simulatorLatencyMilliseconds: Int = 0,
        providerKey: String = "test-provider-key-1",
        tunables: [String: String] = [:],
        _ body: (TestStack) async throws -> Void
    ) async throws -> Int32? {
        let stack = try await TestStack.start(
            processorHeld: processorHeld, providerKey: providerKey, serveOptions: serveOptions, simulatorLatencyMilliseconds: simulatorLatencyMilliseconds,
            tunables: tunables
        )
        do {
            try await body(stack)
        } catch {
            try await stack.stop()
            throw StackFailure(underlying: error, serveLog: StackFailure.excerpt(of: stack.serve.output))
        }
        return try await stack.stop()
    }

    /// Stops serve (which must exit 0) and the simulator, and drops the database.
    @discardableResult
    public func stop() async throws -> Int32? {
        let status = await self.local.stop()
        try await Self.admin { client, logger in
            _ = try await client.query("DROP DATABASE IF EXISTS \(unescaped: self.databaseName) WITH (FORCE)", logger: logger)
        }
        return status
    }

    /// The request bodies the simulator received, parsed.
    /// The chat completions requests the simulator received, oldest first (or those of `path`:
    /// `/v1/images/generations`, `/searxng/search`).
    public func providerRequests(path: String = "/v1/chat/completions") async throws -> [(authorization: String?, body: String)] {
        let response = try await self.simulator.get("/sim/requests")
        return (response.body.arrayValue ?? []).filter { ($0["path"]?.stringValue ?? "/v1/chat/completions") == path }
            .map { ($0["authorization"]?.stringValue, $0["body"]?.stringValue ?? "") }
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

    /// Runs `body` on a database of its own, created and migrated for it and dropped after:
    /// for tests of the statements without a stack. `body` gets the database's name too.
    public static func freshDatabase<Result: Sendable>(
        _ prefix: String, _ body: @Sendable (_ name: String, PostgresClient, Logger) async throws -> Result
    ) async throws -> Result {
        let name = "\(prefix)_\(UInt32.random(in: 0 ... .max))"
        try await Self.admin { client, logger in
            _ = try await client.query("CREATE DATABASE \(unescaped: name)", logger: logger)
        }
        defer {
            Task { try? await Self.admin { client, logger in try await client.query("DROP DATABASE IF EXISTS \(unescaped: name) WITH (FORCE)", logger: logger) } }
        }
        return try await Self.database(name) { client, logger in
            try await Migrator(client: client, logger: logger).migrate()
            return try await body(name, client, logger)
        }
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
    public init(underlying: any Error, serveLog: String) {
        self.underlying = underlying
        self.serveLog = serveLog
    }
    public var description: String { "\(self.underlying)\n\(self.serveLog)" }

    /// The log's warnings and errors (the last 40), then its end: the error that explains a
    /// failure is often far from the end, behind the shutdown's lines.
    public static func excerpt(of log: String) -> String {
        let problems = log.split(separator: "\n").filter { $0.contains(" error ") || $0.contains(" warning ") || $0.contains(" critical ") }.suffix(40)
        return "--- serve log (warnings and errors) ---\n" + problems.joined(separator: "\n") + "\n--- serve log (end) ---\n" + String(log.suffix(4000))
    }
}
