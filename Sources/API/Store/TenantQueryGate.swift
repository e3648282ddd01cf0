import Hummingbird
import Logging
import OneoWire
import PostgresNIO
import Synchronization

/// The heavy read-only queries a tenant can ask for (job lists, diagnostics, analytics): at most
/// `perTenant` of one tenant's at a time (past it: 429), each under a statement timeout, so no
/// tenant holds more than its share of the API's database connections.
final class TenantQueryGate: Sendable {
    let database: PostgresClient
    let perTenant: Int
    private let running = Mutex<[TenantID: Int]>([:])

    init(database: PostgresClient, perTenant: Int = 2) {
        self.database = database
        self.perTenant = perTenant
    }

    func run<Result: Sendable>(
        _ tenant: TenantID, _ context: APIRequestContext, _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        let admitted = self.running.withLock { running -> Bool in
            guard running[tenant, default: 0] < self.perTenant else { return false }
            running[tenant, default: 0] += 1
            return true
        }
        guard admitted else {
            throw APIError(.tooManyRequests, code: "busy", message: "this tenant already has \(self.perTenant) such queries running; try again when one ends")
        }
        defer {
            self.running.withLock { running in
                let left = running[tenant, default: 1] - 1
                running[tenant] = left > 0 ? left : nil
            }
        }
        return try await self.database.asTenant(tenant, logger: context.logger) { connection in
            try await connection.query("SET LOCAL statement_timeout = 10000", logger: context.logger)
            return try await body(connection)
        }
    }
}
