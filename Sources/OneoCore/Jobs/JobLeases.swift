public import Logging
public import PostgresNIO

/// Returns processing jobs whose worker will not finish them to the queue. One statement for
/// every way that happens, so that a job released by a dying worker and one whose lease ran out
/// follow the same rules: back to `pending` while attempts remain, `cancelled` when a newer
/// pending job for the same (record, field) already superseded it, `failed` on its last attempt.
public enum JobLeases {
    public enum Holder: Sendable {
        /// Jobs of the tenant whose lease ran out (their worker hung or vanished unseen).
        case expired
        /// Jobs a known worker held: it was drained past its deadline, or it died and the
        /// supervisor reaped it, so it can never commit them.
        case worker(String)
    }

    @discardableResult
    public static func release(_ holder: Holder, tenant: TenantID, database: PostgresClient, logger: Logger) async throws -> Int {
        let rows: PostgresRowSequence
        switch holder {
        case .expired:
            rows = try await database.query(
                """
                UPDATE ai_jobs j SET \(unescaped: Self.requeue), error_code = 'lease_expired',
                    error_message = 'the processor holding this job stopped before finishing it'
                WHERE j.tenant_id = \(tenant) AND j.status = 'processing' AND j.lease_until < now()
                RETURNING j.id
                """,
                logger: logger
            )
        case .worker(let worker):
            rows = try await database.query(
                """
                UPDATE ai_jobs j SET \(unescaped: Self.requeue), error_code = 'processor_stopped',
                    error_message = 'the processor stopped before finishing this job; it was released for retry'
                WHERE j.tenant_id = \(tenant) AND j.status = 'processing' AND j.locked_by = \(worker)
                RETURNING j.id
                """,
                logger: logger
            )
        }
        var count = 0
        for try await _ in rows { count += 1 }
        return count
    }

    /// Constant SQL (no input in it): the new status and bookkeeping of a released job.
    private static let requeue = """
        status = CASE
            WHEN EXISTS (SELECT 1 FROM ai_jobs p WHERE p.tenant_id = j.tenant_id AND p.record_id = j.record_id
                         AND p.field_name = j.field_name AND p.status = 'pending') THEN 'cancelled'
            WHEN j.attempt < j.max_attempts THEN 'pending'
            ELSE 'failed' END,
        retry_count = j.retry_count + CASE WHEN j.attempt < j.max_attempts THEN 1 ELSE 0 END,
        lease_until = NULL, locked_by = NULL, run_at = now(), updated_at = now()
        """
}
