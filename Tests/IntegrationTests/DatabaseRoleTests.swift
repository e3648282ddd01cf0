import Foundation
import Logging
import OneoWire
import OneoStore
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// The API and the queue manager connect as roles of their own: the API's sees one tenant per
/// transaction (row-level security), neither reads sealed keys or token hashes.
@Suite("database roles")
struct DatabaseRoleTests {
    /// Runs `body` connected to the stack's database as `role` (the test server trusts its socket,
    /// so no password is needed: what is tested is what the role may do once connected).
    static func connected<Result: Sendable>(_ stack: TestStack, as role: String, _ body: @Sendable (PostgresClient, Logger) async throws -> Result) async throws -> Result {
        var settings = try DatabaseSettings(url: stack.databaseURL)
        settings.username = role
        settings.password = nil
        let logger = Logger(label: "oneo.test")
        let client = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: 1))
        return try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { await client.run() }
            defer { group.cancelAll() }
            return try await body(client, logger)
        }
    }

    static func denied(_ client: PostgresClient, _ logger: Logger, _ sql: String) async -> Bool {
        do {
            for try await _ in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger) {}
            return false
        } catch let error as PSQLError {
            return error.serverInfo?[.sqlState] == "42501"
        } catch {
            return false
        }
    }

    static func count(_ connection: PostgresConnection, _ logger: Logger, _ sql: String) async throws -> Int {
        var total = -1
        for try await value in try await connection.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int.self) { total = value }
        return total
    }

    @Test("the API's role sees only the tenant its transaction names and no sealed key; the queue manager's reads no key or token")
    func rolesKeepTheirLanes() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            let globex = try await stack.addTenant("globex", providerKey: "globex-key")
            for api in [stack.api, globex] {
                #expect(try await api.post("/pipelines/", ["name": "Notes", "slug": "notes"]).status == 201)
                #expect(try await api.post("/pipelines/notes/fields/", ["name": "Body", "slug": "body", "field_type": "text"]).status == 201)
            }
            for body in ["one", "two"] { #expect(try await stack.api.post("/pipelines/notes/records/", ["data": ["body": .string(body)]]).status == 201) }
            #expect(try await globex.post("/pipelines/notes/records/", ["data": ["body": "three"]]).status == 201)

            let roles = RoleSetup.roles(forDatabase: stack.databaseName)
            // The children really connect as these roles.
            let users = try await stack.withDatabase { client, logger in
                var users = Set<String>()
                for try await name in try await client.query("SELECT DISTINCT usename::text FROM pg_stat_activity WHERE datname = current_database()", logger: logger).decode(String.self) {
                    users.insert(name)
                }
                return users
            }
            #expect(users.isSuperset(of: [roles.api, roles.queueManager]), "connected users: \(users)")
            let acme = try #require(try await stack.withDatabase { client, logger in
                var ids: [TenantID] = []
                for try await id in try await client.query("SELECT id FROM tenants WHERE slug = 'acme'", logger: logger).decode(TenantID.self) { ids.append(id) }
                return ids
            }.first)

            try await Self.connected(stack, as: roles.api) { client, logger in
                #expect(await Self.denied(client, logger, "SELECT provider_key_sealed FROM tenants"), "the API's role reads sealed keys")
                #expect(await Self.denied(client, logger, "SELECT token_hash FROM api_tokens"), "the API's role reads token hashes")
                #expect(await Self.denied(client, logger, "SELECT fallback_key_sealed FROM operator_settings"), "the API's role reads the operator's key")
                #expect(await Self.denied(client, logger, "SELECT oneo_cancel_jobs_of(1, '{1}', 'x')"), "the API's role cancels any tenant's jobs")
                // No tenant named: nothing at all, whatever the query forgets.
                let unnamed = try await client.withTransaction(logger: logger) { connection in
                    [try await Self.count(connection, logger, "SELECT count(*)::bigint FROM records"),
                     try await Self.count(connection, logger, "SELECT count(*)::bigint FROM tenants")]
                }
                #expect(unnamed == [0, 0])
                // acme named: acme's rows only, though the query has no tenant filter.
                let named = try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("SELECT set_config('oneo.tenant_id', \(String(acme.rawValue)), true)", logger: logger)
                    return [try await Self.count(connection, logger, "SELECT count(*)::bigint FROM records"),
                            try await Self.count(connection, logger, "SELECT count(*)::bigint FROM pipelines"),
                            try await Self.count(connection, logger, "SELECT count(*)::bigint FROM tenants")]
                }
                #expect(named == [2, 1, 1])
                // Writing another tenant's row is refused by the policy's check.
                let refused = await #expect(throws: (any Error).self) {
                    try await client.withTransaction(logger: logger) { connection in
                        try await connection.query("SELECT set_config('oneo.tenant_id', \(String(acme.rawValue)), true)", logger: logger)
                        try await connection.query("UPDATE records SET tenant_id = tenant_id + 1", logger: logger)
                    }
                }
                #expect(refused != nil)
            }
            try await Self.connected(stack, as: roles.queueManager) { client, logger in
                #expect(await Self.denied(client, logger, "SELECT provider_key_sealed FROM tenants"), "the queue manager's role reads sealed keys")
                #expect(await Self.denied(client, logger, "SELECT * FROM api_tokens"), "the queue manager's role reads tokens")
                #expect(await Self.denied(client, logger, "UPDATE pipelines SET name = 'x'"), "the queue manager's role changes pipelines")
                #expect(await Self.denied(client, logger, "SELECT oneo_caller('\\x00'::bytea)"), "the queue manager's role authenticates tokens")
                #expect(await Self.denied(client, logger, "SELECT fallback_key_sealed FROM operator_settings"), "the queue manager's role reads the operator's key")
                // What it needs, across tenants, it has.
                var total = -1
                for try await value in try await client.query("SELECT count(*)::bigint FROM records", logger: logger).decode(Int.self) { total = value }
                #expect(total == 3)
            }
        }
    }
}
