import Dispatch
import Logging
import OneoStore
import OneoWire
import PostgresNIO
import Synchronization

/// File-search grants, made and revoked in the database by the supervisor for the router: the
/// router's threads call these closures (and wait on `make`, never the cooperative pool). A
/// grant that comes too late for its call (the 5 s wait ran out) is never handed out and expires
/// within a minute.
enum FileSearchGrants {
    /// Makes a grant for one file_search call of a tenant: a random token whose hash the database
    /// maps to the tenant for a minute (expired grants go at the same time). Called on a router
    /// thread, which waits for it (never the cooperative pool).
    static func closures(_ database: PostgresClient, logger: Logger) -> (make: @Sendable (TenantID) -> String?, revoke: @Sendable (String) -> Void) {
        let make: @Sendable (TenantID) -> String? = { tenant in
            let token = RoleSetup.freshPassword()
            let done = DispatchSemaphore(value: 0)
            let made = Mutex(false)
            Task {
                do {
                    try await database.query(
                        """
                        WITH expired AS (DELETE FROM file_search_grants WHERE expires_at < now())
                        INSERT INTO file_search_grants (token_hash, tenant_id, expires_at)
                        VALUES (sha256(convert_to(\(token), 'UTF8')), \(tenant.rawValue), now() + interval '60 seconds')
                        """,
                        logger: logger
                    )
                    made.withLock { $0 = true }
                } catch {
                    logger.error("making a file search grant failed", metadata: ["tenant": "\(tenant.rawValue)", "error": "\(SafeErrorDescription.of(error))"])
                }
                done.signal()
            }
            guard done.wait(timeout: .now() + 5) == .success, made.withLock({ $0 }) else { return nil }
            return token
        }
        // Revoking does not hold the router: the row goes in the background (it expires anyway).
        let revoke: @Sendable (String) -> Void = { token in
            Task {
                do {
                    try await database.query("DELETE FROM file_search_grants WHERE token_hash = sha256(convert_to(\(token), 'UTF8'))", logger: logger)
                } catch {
                    logger.warning("revoking a file search grant failed; it expires within a minute", metadata: ["error": "\(SafeErrorDescription.of(error))"])
                }
            }
        }
        return (make, revoke)
    }

}
