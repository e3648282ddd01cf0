import Foundation
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import NIOPosix
import PostgresNIO

/// `POST /api/v1/ai/preview/`: the exact prompt a field config would send for a record (or for
/// data given inline), after exclusion and redaction, with the audit, an estimate of the input
/// tokens and the worst-case cost. No provider is called.
struct PreviewRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore
    let models: ModelCatalog

    struct PreviewRequest: Decodable {
        let pipeline: String
        let record_id: Int64?
        let data: [String: JSONValue]?
        let ai_config: JSONValue
    }

    struct PreviewResponse: ResponseEncodable {
        let prompt: String
        let system_message: String
        let model: String
        let excluded_fields: [String]
        let excluded_keys: Int
        let dropped_fields: [String]
        let dropped_placeholders: [String]
        let prompt_limit_reached: Bool
        let redactions: [String: Int]
        let estimated_input_tokens: Int
        let max_output_tokens: Int
        let worst_case_cost_micros: Int64
        let worst_case_cost_cents: Int64
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("ai/preview") { request, context in
            let caller = try context.require(.read)
            let body = try await request.decodeBody(PreviewRequest.self, context: context)
            let pipeline = try await self.pipelines.resolve(tenant: caller.tenant, body.pipeline, logger: context.logger)
            let fields = try await self.pipelines.fields(tenant: caller.tenant, pipeline: pipeline.id, logger: context.logger)
            let config = try FieldValidator.config(body.ai_config)
            let template = try FieldValidator.template(config.prompt)
            try FieldValidator.checkPlaceholders(template, config: config, slug: "", existing: fields, tenantSensitiveNames: caller.sensitiveNames)
            try RecordWriter.checkStorable(body.data ?? [:])
            var data = body.data ?? [:]
            var recordID: RecordID?
            if let id = body.record_id {
                guard body.data == nil else { throw APIError.invalid("give record_id or data, not both") }
                recordID = RecordID(id)
                data = try await self.recordData(caller.tenant, pipeline.id, RecordID(id), context)
            }
            // Rendering is linear and bounded, but it is CPU work on tenant input: it runs on the
            // thread pool, so a large preview never holds a cooperative thread that every other
            // request and the API's heartbeat share.
            let renderer = PromptRenderer(fields: fields, config: config, tenantSensitiveNames: caller.sensitiveNames)
            let metadata = PromptRenderer.Metadata(recordID: recordID, pipelineName: pipeline.name, tenantName: caller.tenantName, currentUser: caller.tokenName)
            let rendered = try await NIOThreadPool.singleton.runIfActive { [data] in renderer.render(template, data: data, metadata: metadata) }
            let model = config.model ?? caller.defaultModel
            let system = PromptFence.systemMessage(config.systemMessage)
            let sent = rendered.prompt.utf8.count + system.utf8.count
            guard let priced = self.models.model(model) else {
                throw APIError.invalid("model '\(String(model.unicodeScalars.prefix(100)))' has no price; an operator adds models with serve --models")
            }
            // The bound the budget reserves (a token is at least one byte, plus framing); the
            // estimate is the usual four bytes a token. A reply schema counts as input.
            let schemaBytes = config.responseSchema.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
            let bound = CallBound(system: system, prompt: rendered.prompt, schemaBytes: schemaBytes, outputLimit: config.maxTokens)
            let framing = 2 * CallBound.tokensPerMessage + CallBound.tokensPerRequest
            let worstCase = CallBound.jobWorstCase(first: bound, tools: config.enableTools ? config.allowedTools : [], mayRepair: config.outputType != .text, models: self.models, price: priced)
            return PreviewResponse(
                prompt: rendered.prompt,
                system_message: system,
                model: model,
                excluded_fields: rendered.excludedFields,
                excluded_keys: rendered.excludedKeys,
                dropped_fields: rendered.droppedFields,
                dropped_placeholders: rendered.droppedPlaceholders,
                prompt_limit_reached: rendered.reachedLimit,
                redactions: Dictionary(uniqueKeysWithValues: rendered.redactions.map { ($0.key.rawValue, $0.value) }),
                estimated_input_tokens: (sent + 3) / 4 + framing,
                max_output_tokens: config.maxTokens,
                worst_case_cost_micros: worstCase.rawValue,
                worst_case_cost_cents: (worstCase.rawValue + 9_999) / 10_000
            )
        }
    }

    private func recordData(_ tenant: TenantID, _ pipeline: PipelineID, _ id: RecordID, _ context: APIRequestContext) async throws -> [String: JSONValue] {
        let found = try await self.database.asTenant(tenant, logger: context.logger) { connection -> [String: JSONValue]? in
            let rows = try await connection.query(
                "SELECT data FROM records WHERE id = \(id) AND tenant_id = \(tenant) AND pipeline_id = \(pipeline)",
                logger: context.logger
            )
            for try await data in rows.decode(JSONValue.self) { return data.objectValue ?? [:] }
            return nil
        }
        if let found { return found }
        throw APIError.notFound("record \(id)")
    }
}
