import Logging
import OneoWire
import PostgresNIO

extension PostgresClient {
    /// A transaction whose failure surfaces the closure's own error (an `APIError` stays a 422 or a
    /// 404) rather than PostgresNIO's wrapper, which the API would have to answer with a 500.
    func withTransactionRethrowing<Result: Sendable>(
        logger: Logger,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        do {
            return try await self.withTransaction(logger: logger, body)
        } catch let error as PostgresTransactionError {
            if let underlying = error.closureError { throw underlying }
            throw error
        }
    }
}

extension PostgresClient {
    /// A transaction in which row-level security shows `tenant`'s rows and no other's. Every
    /// query the API runs for a caller goes through here: the role the API connects as sees
    /// nothing outside the tenant a transaction names (and nothing when it names none).
    func asTenant<Result: Sendable>(
        _ tenant: TenantID,
        logger: Logger,
        _ body: (PostgresConnection) async throws -> sending Result
    ) async throws -> Result {
        try await self.withTransactionRethrowing(logger: logger) { connection in
            try await connection.query("SELECT set_config('oneo.tenant_id', \(String(tenant.rawValue)), true)", logger: logger)
            return try await body(connection)
        }
    }
}
