import Logging
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
