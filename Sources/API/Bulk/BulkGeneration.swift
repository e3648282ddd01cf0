public import Foundation
public import Logging
import NIOPosix
public import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
public import PostgresNIO

/// Fills one AI field on many records: the API's `…/fields/{slug}/generate/` and the CLI's
/// `oneo-ai generate` are this one type. A run is planned first (the records that match, and the
/// worst case of filling them: each record's prompt rendered and bounded as its budget
/// reservation will bound it), then queued on the planner's word; each call is reserved against
/// the budgets as it runs, so a budget stops the run where it runs out.
public struct BulkGeneration: Sendable {
    /// The most records one run fills: a larger run is narrowed with `where` or split.
    public static let maximumRecords = 10_000

    /// Who asks, and the tenant settings the prompts are rendered with.
    public struct Requester: Sendable {
        public let tenant: TenantID
        public let tenantName: String
        public let defaultModel: String
        public let sensitiveNames: [String]
        /// The token's or operator's name, kept on the jobs as who triggered them.
        public let user: String

        public init(tenant: TenantID, tenantName: String, defaultModel: String, sensitiveNames: [String], user: String) {
            self.tenant = tenant
            self.tenantName = tenantName
            self.defaultModel = defaultModel
            self.sensitiveNames = sensitiveNames
            self.user = user
        }
    }

    /// Which records: all or only those whose field is empty, narrowed by `where` (input fields
    /// compared with scalars).
    public struct Selection: Sendable {
        public let pipeline: String
        public let field: String
        public let onlyEmpty: Bool
        public let conditions: [String: JSONValue]

        public init(pipeline: String, field: String, onlyEmpty: Bool, conditions: [String: JSONValue]) {
            self.pipeline = pipeline
            self.field = field
            self.onlyEmpty = onlyEmpty
            self.conditions = conditions
        }
    }

    public struct Plan: Sendable {
        public let pipeline: PipelineID
        public let field: String
        public let model: String
        public let records: Int
        public let worstCase: Microdollars
        /// When the plan was made: the run's progress counts the field's jobs since then.
        public let since: Date
        fileprivate let requester: Requester
        fileprivate let fieldDefinition: PipelineField
        fileprivate let fields: [PipelineField]
        fileprivate let recordRows: [RecordResource]
    }

    /// The field's jobs since a run began, by status.
    public struct Progress: Sendable, Equatable {
        public var pending = 0
        public var processing = 0
        public var completed = 0
        public var failed = 0
        public var cancelled = 0

        public init() {}

        public var total: Int { self.pending + self.processing + self.completed + self.failed + self.cancelled }
        public var finished: Int { self.completed + self.failed + self.cancelled }
    }

    let database: PostgresClient
    let pipelines: PipelineStore
    let models: ModelCatalog
    let maxAttempts: Int

    public init(database: PostgresClient, models: ModelCatalog, maxAttempts: Int) {
        self.init(database: database, pipelines: PipelineStore(database: database), models: models, maxAttempts: maxAttempts)
    }

    init(database: PostgresClient, pipelines: PipelineStore, models: ModelCatalog, maxAttempts: Int) {
        self.database = database
        self.pipelines = pipelines
        self.models = models
        self.maxAttempts = maxAttempts
    }

    /// The records a run would fill and its worst-case cost; queues nothing. Throws `APIError`
    /// for a selection that cannot run (an unknown field, a bad filter, too many records).
    public func plan(_ selection: Selection, by requester: Requester, logger: Logger) async throws -> Plan {
        let pipeline = try await self.pipelines.resolve(tenant: requester.tenant, selection.pipeline, logger: logger)
        let writer = self.writer(requester)
        let since = Date()
        let (field, fields, records) = try await self.database.asTenant(requester.tenant, logger: logger) { connection in
            let fields = try await writer.fields(pipeline.id, connection, logger)
            guard let field = fields.first(where: { $0.slug == selection.field }) else { throw APIError.notFound("field '\(String(selection.field.prefix(64)))'") }
            guard field.isAIGenerated, field.aiConfig != nil else { throw APIError.invalid("field '\(field.slug)' is not an ai_generated field") }
            let conditions = try Self.conditions(selection.conditions, fields: fields)
            let rows = try await connection.query(
                """
                SELECT id, data, version, created_at, updated_at FROM records
                WHERE tenant_id = \(requester.tenant) AND pipeline_id = \(pipeline.id) AND data @> \(conditions)
                  AND (NOT \(selection.onlyEmpty) OR coalesce(data ->> \(field.slug), '') = '')
                ORDER BY id LIMIT \(Int64(Self.maximumRecords + 1))
                """,
                logger: logger
            )
            var records: [RecordResource] = []
            for try await (id, data, version, created, updated) in rows.decode((RecordID, JSONValue, Int64, Date, Date).self) {
                records.append(RecordResource(id: id, pipeline: pipeline.id, data: data, version: version, created_at: created, updated_at: updated))
            }
            return (field, fields, records)
        }
        guard records.count <= Self.maximumRecords else {
            throw APIError.invalid("more than \(Self.maximumRecords) records match; narrow them with where, or only the empty ones")
        }
        guard let config = field.aiConfig else { throw APIError.invalid("field '\(field.slug)' is not an ai_generated field") }
        let model = config.model ?? requester.defaultModel
        guard let price = self.models.model(model) else {
            throw APIError.invalid("model '\(String(model.unicodeScalars.prefix(100)))' has no price; an operator adds models with serve --models")
        }
        // Every record's prompt, rendered as its job will render it, bounded as its reservation
        // will be: CPU work on tenant input, so on the thread pool.
        let template = try FieldValidator.template(config.prompt)
        let renderer = PromptRenderer(fields: fields, config: config, tenantSensitiveNames: requester.sensitiveNames)
        let system = PromptFence.systemMessage(config.systemMessage)
        let schemaBytes = config.responseSchema.map { (try? JSONEncoder().encode($0).count) ?? 0 } ?? 0
        let (pipelineName, tenantName, user) = (pipeline.name, requester.tenantName, requester.user)
        let (tools, models) = (config.enableTools ? config.allowedTools : [], self.models)
        let worstCase = try await NIOThreadPool.singleton.runIfActive { [records] () -> Int64 in
            var total: Int64 = 0
            for record in records {
                let metadata = PromptRenderer.Metadata(recordID: record.id, pipelineName: pipelineName, tenantName: tenantName, currentUser: user)
                let prompt = renderer.render(template, data: record.data.objectValue ?? [:], metadata: metadata).prompt
                let first = CallBound(system: system, prompt: prompt, schemaBytes: schemaBytes, outputLimit: config.maxTokens)
                total += CallBound.jobWorstCase(first: first, tools: tools, mayRepair: config.outputType != .text, models: models, price: price).rawValue
            }
            return total
        }
        return Plan(
            pipeline: pipeline.id, field: field.slug, model: model, records: records.count, worstCase: Microdollars(worstCase), since: since,
            requester: requester, fieldDefinition: field, fields: fields, recordRows: records
        )
    }

    /// Queues the plan's jobs (a record whose field already has a pending job keeps that one,
    /// updated). Returns how many were queued.
    public func queue(_ plan: Plan, logger: Logger) async throws -> Int {
        guard !plan.recordRows.isEmpty else { return 0 }
        let writer = self.writer(plan.requester)
        let queued = try await self.database.asTenant(plan.requester.tenant, logger: logger) { connection in
            var count = 0
            for record in plan.recordRows
            where try await writer.queueJob(field: plan.fieldDefinition, record: record, fields: plan.fields, changed: [], on: connection, logger: logger) != nil {
                count += 1
            }
            return count
        }
        logger.info("bulk generation queued", metadata: ["field": "\(plan.field)", "jobs": "\(queued)", "worst_case_micros": "\(plan.worstCase.rawValue)"])
        return queued
    }

    /// The field's jobs created since `since`, by status.
    public func progress(tenant: TenantID, pipeline: PipelineID, field: String, since: Date, logger: Logger) async throws -> Progress {
        try await self.database.asTenant(tenant, logger: logger) { connection -> Progress in
            let rows = try await connection.query(
                """
                SELECT status, count(*)::bigint FROM ai_jobs
                WHERE tenant_id = \(tenant) AND pipeline_id = \(pipeline) AND field_name = \(field) AND created_at >= \(since)
                GROUP BY status
                """,
                logger: logger
            )
            var progress = Progress()
            for try await (status, count) in rows.decode((String, Int).self) {
                switch JobStatus(rawValue: status) {
                case .pending: progress.pending = count
                case .processing: progress.processing = count
                case .completed: progress.completed = count
                case .failed: progress.failed = count
                case .cancelled: progress.cancelled = count
                case nil: continue
                }
            }
            return progress
        }
    }

    /// A pipeline by id or slug, for a progress request.
    func pipeline(tenant: TenantID, _ reference: String, logger: Logger) async throws -> PipelineID {
        try await self.pipelines.resolve(tenant: tenant, reference, logger: logger).id
    }

    private func writer(_ requester: Requester) -> RecordWriter {
        RecordWriter(
            tenant: requester.tenant, defaultModel: requester.defaultModel, user: requester.user,
            tenantSensitiveNames: requester.sensitiveNames, maxAttempts: self.maxAttempts
        )
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
