public import OneoWire
public import Logging
public import PostgresNIO

/// One budget's current month, as the ledger has it: what may be spent, what was spent (real
/// costs, and reservations kept where the cost could not be known), and what calls in flight hold
/// (the reservations of its processing attempts).
public struct BudgetPeriod: Sendable, Equatable {
    /// `tenant` (the tenant's monthly budget) or `field`.
    public let scope: String
    public let pipeline: PipelineID?
    public let fieldName: String?
    /// The first day of the month, in the tenant's time zone (`YYYY-MM-DD`).
    public let periodStart: String
    public let limit: Microdollars
    public let spent: Microdollars
    public let reserved: Microdollars

    public var remaining: Microdollars { Microdollars(max(0, self.limit.rawValue - self.spent.rawValue - self.reserved.rawValue)) }
}

/// Reads the budget ledger for people: the API's budget view and `oneo-ai tenant show`. Only the
/// queue manager writes it (`JobQueue.reserve` and the statements that end attempts).
public enum BudgetLedger {
    /// The tenant's budgets for the current month in its time zone. The tenant's own limit is
    /// read live (the row keeps the one its newest reservation was checked against).
    public static func current(tenant: TenantID, on connection: PostgresConnection, logger: Logger) async throws -> (timeZone: String, periods: [BudgetPeriod]) {
        var zone = "UTC"
        var monthly: Microdollars?
        var start = ""
        let tenants = try await connection.query(
            """
            SELECT time_zone, monthly_budget_micros, to_char(date_trunc('month', now() AT TIME ZONE time_zone), 'YYYY-MM-DD')
            FROM tenants WHERE id = \(tenant)
            """,
            logger: logger
        )
        for try await (name, budget, month) in tenants.decode((String, Microdollars?, String).self) {
            (zone, monthly, start) = (name, budget, month)
        }
        let rows = try await connection.query(
            """
            SELECT b.scope, b.pipeline_id, b.field_name, b.limit_micros, b.spent_micros,
                   (SELECT coalesce(sum(a.reserved_micros), 0)::bigint FROM ai_jobs a
                    WHERE a.tenant_id = b.tenant_id AND a.status = 'processing' AND a.reserved_periods @> ARRAY[b.id])
            FROM budget_periods b
            WHERE b.tenant_id = \(tenant) AND b.period_start = \(start)::date
            ORDER BY b.scope DESC, b.pipeline_id, b.field_name LIMIT 10000
            """,
            logger: logger
        )
        var periods: [BudgetPeriod] = []
        var tenantRow = false
        for try await (scope, pipeline, field, limit, spent, reserved) in rows.decode((String, Int64, String, Microdollars, Microdollars, Microdollars).self) {
            let isTenant = scope == "tenant"
            tenantRow = tenantRow || isTenant
            periods.append(BudgetPeriod(
                scope: scope, pipeline: isTenant ? nil : PipelineID(pipeline), fieldName: isTenant ? nil : field, periodStart: start,
                limit: isTenant ? (monthly ?? limit) : limit, spent: spent, reserved: reserved
            ))
        }
        // A monthly budget with no reservation yet this month: its spend so far is the month's
        // usage rows, as its period row will count it when the first reservation creates it.
        if let monthly, !tenantRow {
            var spent = Microdollars.zero
            let usage = try await connection.query(
                """
                SELECT coalesce(sum(cost_micros), 0)::bigint FROM ai_usage
                WHERE tenant_id = \(tenant) AND created_at >= (\(start)::date::timestamp AT TIME ZONE \(zone))
                """,
                logger: logger
            )
            for try await value in usage.decode(Microdollars.self) { spent = value }
            periods.insert(BudgetPeriod(scope: "tenant", pipeline: nil, fieldName: nil, periodStart: start, limit: monthly, spent: spent, reserved: .zero), at: 0)
        }
        return (zone, periods)
    }
}
