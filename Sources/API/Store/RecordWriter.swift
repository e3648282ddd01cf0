import Foundation
public import Logging
public import OneoWire
public import OneoPrompt
public import OneoStore
public import OneoCore
public import PostgresNIO

/// Writes records and queues the AI jobs their change calls for, on a connection the caller has in
/// a transaction: the jobs and the NOTIFY commit with the record or not at all.
public struct RecordWriter: Sendable {
    public let tenant: TenantID
    public let defaultModel: String
    public let user: String
    public let tenantSensitiveNames: [String]
    /// Attempts each queued job gets (`queue.max_retries` + 1).
    public let maxAttempts: Int

    public init(tenant: TenantID, defaultModel: String, user: String, tenantSensitiveNames: [String] = [], maxAttempts: Int = 4) {
        self.tenant = tenant
        self.defaultModel = defaultModel
        self.user = user
        self.tenantSensitiveNames = tenantSensitiveNames
        self.maxAttempts = maxAttempts
    }

    public func create(
        pipeline: PipelineID,
        data: [String: JSONValue],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> RecordResource {
        let fields = try await self.fields(pipeline, connection, logger)
        try Self.validate(data, against: fields)
        let rows = try await connection.query(
            """
            INSERT INTO records (tenant_id, pipeline_id, data, created_by, updated_by)
            VALUES (\(self.tenant), \(pipeline), \(JSONValue.object(data)), \(self.user), \(self.user))
            RETURNING id, data, version, created_at, updated_at
            """,
            logger: logger
        )
        var record = try await Self.single(rows, pipeline: pipeline)
        let changed = Set(data.filter { !$0.value.isNull }.keys)
        record.triggered_jobs = try await self.queueJobs(record: record, fields: fields, changed: changed, on: connection, logger: logger)
        record.processing_mode = "async"
        return record
    }

    /// Merges `patch` into the record's data (a `null` value clears a field) and bumps its version.
    public func update(
        pipeline: PipelineID,
        record id: RecordID,
        patch: [String: JSONValue],
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> RecordResource {
        let fields = try await self.fields(pipeline, connection, logger)
        try Self.validate(patch, against: fields)
        let current = try await connection.query(
            """
            SELECT data FROM records
            WHERE id = \(id) AND tenant_id = \(self.tenant) AND pipeline_id = \(pipeline) FOR UPDATE
            """,
            logger: logger
        )
        var before: [String: JSONValue]?
        for try await data in current.decode(JSONValue.self) { before = data.objectValue ?? [:] }
        guard let before else { throw APIError.notFound("record \(id)") }
        var after = before
        for (key, value) in patch { after[key] = value }
        let rows = try await connection.query(
            """
            UPDATE records SET data = \(JSONValue.object(after)), version = version + 1,
                               updated_by = \(self.user), updated_at = now()
            WHERE id = \(id) AND tenant_id = \(self.tenant)
            RETURNING id, data, version, created_at, updated_at
            """,
            logger: logger
        )
        var record = try await Self.single(rows, pipeline: pipeline)
        let changed = TriggerPlanner.changedKeys(before: before, after: after)
        record.triggered_jobs = try await self.queueJobs(record: record, fields: fields, changed: changed, on: connection, logger: logger)
        record.processing_mode = "async"
        return record
    }

    /// One pending job per (record, field): a pending job for the same pair is superseded in place.
    /// A field whose template names another AI field waits for that field's job (`depends_on`).
    func queueJobs(
        record: RecordResource,
        fields: [PipelineField],
        changed: Set<String>,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> [TriggeredJob] {
        var triggered: [TriggeredJob] = []
        for field in TriggerPlanner.fieldsToRegenerate(fields: fields, changed: changed, tenantSensitiveNames: self.tenantSensitiveNames) {
            if let job = try await self.queueJob(field: field, record: record, fields: fields, changed: changed, on: connection, logger: logger) {
                triggered.append(job)
            }
        }
        return triggered
    }

    /// Queues one AI field of a record now, whether or not a change calls for it (`generate`):
    /// nil when the field is not an AI field.
    func queueJob(
        field: PipelineField,
        record: RecordResource,
        fields: [PipelineField],
        changed: Set<String>,
        on connection: PostgresConnection,
        logger: Logger
    ) async throws -> TriggeredJob? {
        guard let config = field.aiConfig else { return nil }
        let dependsOn = TriggerPlanner.dependencies(of: field, in: fields)
        let input: JSONValue = [
            "record_version": .integer(record.version),
            "changed_fields": .array(changed.sorted().map(JSONValue.string)),
        ]
        // The NOTIFY rides on the insert; delivered only if the transaction commits, which is
        // what makes the queue transactional.
        let rows = try await connection.query(
            """
            WITH queued AS (
                INSERT INTO ai_jobs (tenant_id, pipeline_id, record_id, field_name, model_name, field_version_id,
                                     input_data, record_version, triggered_by, max_attempts, depends_on)
                SELECT \(self.tenant), \(record.pipeline), \(record.id), \(field.slug), \(config.model ?? self.defaultModel),
                       f.version_id, \(input), \(record.version), \(self.user), \(self.maxAttempts), \(dependsOn)
                FROM fields f WHERE f.id = \(field.id) AND f.tenant_id = \(self.tenant)
                ON CONFLICT (tenant_id, record_id, field_name) WHERE status = 'pending'
                DO UPDATE SET model_name = EXCLUDED.model_name, field_version_id = EXCLUDED.field_version_id,
                              input_data = EXCLUDED.input_data, max_attempts = EXCLUDED.max_attempts, depends_on = EXCLUDED.depends_on,
                              record_version = EXCLUDED.record_version, triggered_by = EXCLUDED.triggered_by,
                              run_at = now(), updated_at = now()
                RETURNING id)
            SELECT id, pg_notify(\(JobChannel.jobsQueued), \(String(self.tenant.rawValue)))::text FROM queued
            """,
            logger: logger
        )
        for try await (id, _) in rows.decode((JobID, String).self) {
            return TriggeredJob(field: field.slug, job_id: "\(id)", status: "queued_on_commit")
        }
        return nil
    }

    func fields(_ pipeline: PipelineID, _ connection: PostgresConnection, _ logger: Logger) async throws -> [PipelineField] {
        try await PipelineStore.fields(tenant: self.tenant, pipeline: pipeline, query: { try await connection.query($0, logger: logger) })
    }

    /// Clients write only the pipeline's own, non-AI fields, and only what PostgreSQL can store.
    static func validate(_ data: [String: JSONValue], against fields: [PipelineField]) throws(APIError) {
        try Self.checkStorable(data)
        let bySlug = Dictionary(fields.map { ($0.slug, $0) }, uniquingKeysWith: { first, _ in first })
        for key in data.keys.sorted() {
            guard let field = bySlug[key] else {
                throw APIError.invalid("data.\(key) is not a field of this pipeline")
            }
            if field.isAIGenerated {
                throw APIError.invalid("data.\(key) is an ai_generated field: its value is written by the engine")
            }
        }
    }

    /// Refuses a NUL character anywhere in record data with a 422 naming where it is (jsonb
    /// cannot hold one; without this check PostgreSQL's refusal would be the caller's 500).
    static func checkStorable(_ data: [String: JSONValue], under prefix: String = "data") throws(APIError) {
        if let path = JSONValue.object(data).pathOfUnstorableText(under: prefix) {
            throw APIError.invalid("\(String(path.unicodeScalars.prefix(200))) contains a NUL character (U+0000), which cannot be stored")
        }
    }

    static func single(_ rows: PostgresRowSequence, pipeline: PipelineID) async throws -> RecordResource {
        for try await (id, data, version, created, updated) in rows.decode((RecordID, JSONValue, Int64, Date, Date).self) {
            return RecordResource(id: id, pipeline: pipeline, data: data, version: version, created_at: created, updated_at: updated)
        }
        throw APIError.notFound("record")
    }
}
