import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// `GET /api/v1/ai-budgets/` (`read`): the caller's budgets this month — the tenant's monthly
/// budget and each AI field's — with limit, spent and reserved (by calls in flight) in
/// micro-dollars and cents. What the queue manager reserves against, read from the same rows.
struct BudgetRoutes {
    let gate: TenantQueryGate

    struct Budget: Encodable {
        let scope: String
        let pipeline_id: Int64?
        let field: String?
        let period_start: String
        let limit_micros: Int64
        let spent_micros: Int64
        let reserved_micros: Int64
        let remaining_micros: Int64
        let limit_cents: Int64
        let spent_cents: Int64
    }

    struct Answer: ResponseEncodable {
        let time_zone: String
        let budgets: [Budget]
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.get("ai-budgets") { _, context in
            let caller = try context.require(.read)
            let (zone, periods) = try await self.gate.run(caller.tenant, context) { connection in
                try await BudgetLedger.current(tenant: caller.tenant, on: connection, logger: context.logger)
            }
            return Answer(time_zone: zone, budgets: periods.map { period in
                Budget(
                    scope: period.scope, pipeline_id: period.pipeline?.rawValue, field: period.fieldName, period_start: period.periodStart,
                    limit_micros: period.limit.rawValue, spent_micros: period.spent.rawValue, reserved_micros: period.reserved.rawValue,
                    remaining_micros: period.remaining.rawValue, limit_cents: period.limit.roundedCents, spent_cents: period.spent.roundedCents
                )
            })
        }
    }
}
