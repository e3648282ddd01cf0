import Foundation
import Hummingbird
import NIOPosix
import OneoWire
import OneoPrompt
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
    let database: PostgresClient
    let pipelines: PipelineStore
    let models: ModelCatalog
    let maxAttempts: Int

    /// The most records one request fills: a larger run is narrowed with `where` or split.
    static let maximumRecords = 10_000
    /// One bulk request per tenant at a time: rendering 10,000 prompts is real CPU work.
    let running = WaiterCounts()

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
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let slug = try context.parameters.require("field")
            let onlyEmpty: Bool
            switch body.records ?? "all" {
            case "all": onlyEmpty = false
            case "empty": onlyEmpty = true
            default: throw APIError.invalid("records must be all or empty")
            }
            let writer = RecordWriter(
                tenant: caller.tenant, defaultModel: caller.defaultModel, user: caller.tokenName,
                tenantSensitiveNames: caller.sensitiveNames, maxAttempts: self.maxAttempts
            )
            let since = Date()
            let (field, fields, records) = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                let fields = try await writer.fields(pipeline.id, connection, context.logger)
                guard let field = fields.first(where: { $0.slug == slug }) else { throw APIError.notFound("field '\(String(slug.prefix(64)))'") }
                guard field.isAIGenerated, field.aiConfig != nil else { throw APIError.invalid("field '\(field.slug)' is not an ai_generated field") }
                let conditions = try Self.conditions(body.where ?? [:], fields: fields)
                let rows = try await connection.query(
                    """
                    SELECT id, data, version, created_at, updated_at FROM records
                    WHERE tenant_id = \(caller.tenant) AND pipeline_id = \(pipeline.id) AND data @> \(conditions)
                      AND (NOT \(onlyEmpty) OR coalesce(data ->> \(field.slug), '') = '')
                    ORDER BY id LIMIT \(Int64(Self.maximumRecords + 1))
                    """,
                    logger: context.logger
                )
                var records: [RecordResource] = []
                for try await (id, data, version, created, updated) in rows.decode((RecordID, JSONValue, Int64, Date, Date).self) {
                    records.append(RecordResource(id: id, pipeline: pipeline.id, data: data, version: version, created_at: created, updated_at: updated))
                }
                return (field, fields, records)
            }
            guard records.count <= Self.maximumRecords else {
                throw APIError.invalid("more than \(Self.maximumRecords) records match; narrow them with where, or records: empty")
            }
            guard let config = field.aiConfig else { throw APIError.invalid("field '\(field.slug)' is not an ai_generated field") }
            let model = config.model ?? caller.defaultModel
            guard let price = self.models.model(model) else {
                throw APIError.invalid("model '\(String(model.unicodeScalars.prefix(100)))' has no price; an operator adds models with serve --models")
            }
            // Every record's prompt, rendered as its job will render it, bounded as its
            // reservation will be: CPU work on tenant input, so on the thread pool.
            let template = try FieldValidator.template(config.prompt)
            let renderer = PromptRenderer(fields: fields, config: config, tenantSensitiveNames: caller.sensitiveNames)
            let system = PromptFence.systemMessage(config.systemMessage)
            let schemaBytes = config.responseSchema.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
            let (pipelineName, tenantName, user) = (pipeline.name, caller.tenantName, caller.tokenName)
            let worstCase = try await NIOThreadPool.singleton.runIfActive { [records] () -> Int64 in
                var total: Int64 = 0
                for record in records {
                    let metadata = PromptRenderer.Metadata(recordID: record.id, pipelineName: pipelineName, tenantName: tenantName, currentUser: user)
                    let prompt = renderer.render(template, data: record.data.objectValue ?? [:], metadata: metadata).prompt
                    total += CallBound(system: system, prompt: prompt, schemaBytes: schemaBytes, outputLimit: config.maxTokens).cost(at: price).rawValue
                }
                return total
            }
            var queued = 0
            if body.confirm == true, !records.isEmpty {
                queued = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                    var count = 0
                    for record in records where try await writer.queueJob(field: field, record: record, fields: fields, changed: [], on: connection, logger: context.logger) != nil {
                        count += 1
                    }
                    return count
                }
                context.logger.info("bulk generation queued", metadata: ["field": "\(field.slug)", "jobs": "\(queued)", "worst_case_micros": "\(worstCase)"])
            }
            let cost = Microdollars(worstCase)
            return Answer(
                field: field.slug, model: model, records: records.count, worst_case_cost_micros: cost.rawValue,
                worst_case_cost_cents: (cost.rawValue + 9_999) / 10_000, confirmed: body.confirm == true, queued: queued, since: since
            )
        }

        group.get("pipelines/:pipeline/fields/:field/generate") { request, context in
            let caller = try context.require(.read)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
            let slug = try context.parameters.require("field")
            guard let text = request.uri.queryParameters.get("since"), let since = TimeInput.parse(text) else {
                throw APIError.invalid("since must be the time a generate answer gave (ISO 8601)")
            }
            let counts = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> [String: Int] in
                let rows = try await connection.query(
                    """
                    SELECT status, count(*)::bigint FROM ai_jobs
                    WHERE tenant_id = \(caller.tenant) AND pipeline_id = \(pipeline.id) AND field_name = \(slug) AND created_at >= \(since)
                    GROUP BY status
                    """,
                    logger: context.logger
                )
                var counts: [String: Int] = [:]
                for try await (status, count) in rows.decode((String, Int).self) { counts[status] = count }
                return counts
            }
            return Progress(
                field: slug, since: since, total: counts.values.reduce(0, +), pending: counts["pending"] ?? 0, processing: counts["processing"] ?? 0,
                completed: counts["completed"] ?? 0, failed: counts["failed"] ?? 0, cancelled: counts["cancelled"] ?? 0
            )
        }
    }

    /// `where` as a JSON object the records' data must contain: each key a non-AI field of the
    /// pipeline, each value a string, number, boolean or null.
    static func conditions(_ wanted: [String: JSONValue], fields: [PipelineField]) throws -> JSONValue {
        guard wanted.count <= 16 else { throw APIError.invalid("where takes at most 16 fields") }
        for (key, value) in wanted {
            guard let field = fields.first(where: { $0.slug == key }), !field.isAIGenerated else {
                throw APIError.invalid("where: '\(String(key.prefix(64)))' is not an input field of this pipeline")
            }
            switch value {
            case .string, .integer, .double, .bool, .null: continue
            default: throw APIError.invalid("where: '\(field.slug)' must be compared with a string, number, boolean or null")
            }
        }
        return .object(wanted)
    }
}
