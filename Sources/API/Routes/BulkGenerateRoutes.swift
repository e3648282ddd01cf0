import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// `POST /api/v1/pipelines/{p}/fields/{slug}/generate/` fills one AI field on many records:
/// `{"records": "all" | "empty", "where": {"company": "Initech"}, "confirm": false}`. Without
/// `confirm` it answers how many records match and the worst case of what filling them can cost
/// (each record's prompt rendered and bounded as its budget reservation will bound it), and queues
/// nothing. With `confirm` it queues them; each call is reserved against the budgets as it runs,
/// so a budget stops the run where it runs out. `GET` on the same path with `since` (the time the
/// answer gave) is the run's progress: the field's jobs since then, by status.
struct BulkGenerateRoutes {
    let bulk: BulkGeneration
    /// One bulk request per tenant at a time: rendering 10,000 prompts is real CPU work.
    let running = WaiterCounts()

    init(database: PostgresClient, pipelines: PipelineStore, models: ModelCatalog, maxAttempts: Int) {
        self.bulk = BulkGeneration(database: database, pipelines: pipelines, models: models, maxAttempts: maxAttempts)
    }

    struct Body: Decodable {
        let records: String?
        let `where`: [String: JSONValue]?
        let confirm: Bool?
    }

    struct Answer: ResponseEncodable {
        let field: String
        let model: String
        let records: Int
        let worst_case_cost_micros: Int64
        let worst_case_cost_cents: Int64
        let confirmed: Bool
        let queued: Int
        /// Pass as `since` to the progress (GET) of this run.
        let since: Date
    }

    struct Progress: ResponseEncodable {
        let field: String
        let since: Date
        let total: Int
        let pending: Int
        let processing: Int
        let completed: Int
        let failed: Int
        let cancelled: Int
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("pipelines/:pipeline/fields/:field/generate") { request, context in
            let body = try await request.decodeBody(Body.self, context: context)
            let caller = try context.require(body.confirm == true ? .create : .read)
            guard self.running.enter(caller.tenant, limit: 1) else {
                throw APIError(.tooManyRequests, code: "busy", message: "this tenant already has a bulk generation request running; try again when it ends")
            }
            defer { self.running.leave(caller.tenant) }
            let onlyEmpty: Bool
            switch body.records ?? "all" {
            case "all": onlyEmpty = false
            case "empty": onlyEmpty = true
            default: throw APIError.invalid("records must be all or empty")
            }
            let selection = BulkGeneration.Selection(
                pipeline: try context.parameters.require("pipeline"), field: try context.parameters.require("field"),
                onlyEmpty: onlyEmpty, conditions: body.where ?? [:]
            )
            let requester = BulkGeneration.Requester(
                tenant: caller.tenant, tenantName: caller.tenantName, defaultModel: caller.defaultModel,
                sensitiveNames: caller.sensitiveNames, user: caller.tokenName
            )
            let plan = try await self.bulk.plan(selection, by: requester, logger: context.logger)
            let queued = body.confirm == true ? try await self.bulk.queue(plan, logger: context.logger) : 0
            return Answer(
                field: plan.field, model: plan.model, records: plan.records, worst_case_cost_micros: plan.worstCase.rawValue,
                worst_case_cost_cents: (plan.worstCase.rawValue + 9_999) / 10_000, confirmed: body.confirm == true, queued: queued, since: plan.since
            )
        }

        group.get("pipelines/:pipeline/fields/:field/generate") { request, context in
            let caller = try context.require(.read)
            let pipeline = try await self.bulk.pipeline(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let slug = try context.parameters.require("field")
            guard let text = request.uri.queryParameters.get("since"), let since = TimeInput.parse(text) else {
                throw APIError.invalid("since must be the time a generate answer gave (ISO 8601)")
            }
            let counts = try await self.bulk.progress(tenant: caller.tenant, pipeline: pipeline, field: slug, since: since, logger: context.logger)
            return Progress(
                field: slug, since: since, total: counts.total, pending: counts.pending, processing: counts.processing,
                completed: counts.completed, failed: counts.failed, cancelled: counts.cancelled
            )
        }
    }
}
