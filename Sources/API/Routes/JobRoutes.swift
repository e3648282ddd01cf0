import Foundation
import HTTPTypes
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// `/api/v1/ai-jobs/`: the tenant's jobs, filtered, ordered and paginated like Django REST
/// framework, and one job with its attempts. The actions (retry, cancel, bulk) are in
/// `JobActionRoutes`; health and diagnostics in `JobHealthRoutes`.
struct JobRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore
    /// Lists scan a tenant's jobs: two at a time per tenant, under a statement timeout.
    let gate: TenantQueryGate

    init(database: PostgresClient, pipelines: PipelineStore) {
        self.database = database
        self.pipelines = pipelines
        self.gate = TenantQueryGate(database: database)
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.get("ai-jobs") { request, context in
            let caller = try context.require(.read)
            return try await self.list(request, context, caller)
        }
        group.get("ai-jobs/:job/artifacts/:name") { _, context -> Response in
            let caller = try context.require(.read)
            let id = try Self.jobID(context)
            let name = try context.parameters.require("name")
            guard JobArtifact.isSafeName(name) else { throw APIError.notFound("artifact") }
            let found = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> (String, ByteBuffer)? in
                let rows = try await connection.query(
                    "SELECT media_type, bytes FROM ai_job_artifacts WHERE job_id = \(id) AND tenant_id = \(caller.tenant) AND name = \(name)",
                    logger: context.logger
                )
                for try await (type, bytes) in rows.decode((String, ByteBuffer).self) { return (type, bytes) }
                return nil
            }
            guard let (type, bytes) = found else { throw APIError.notFound("artifact '\(name)' of job \(id)") }
            return Response(
                status: .ok,
                headers: [
                    .contentType: Self.servedType(type), .contentDisposition: "attachment; filename=\"\(name)\"",
                    HTTPField.Name("X-Content-Type-Options")!: "nosniff", .contentSecurityPolicy: "default-src 'none'; sandbox",
                    .cacheControl: "private, no-store",
                ],
                body: .init(byteBuffer: bytes)
            )
        }
        group.get("ai-jobs/:job") { request, context in
            let caller = try context.require(.read)
            let id = try Self.jobID(context)
            return try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                try await Self.load(id, tenant: caller.tenant, on: connection, logger: context.logger)
            }
        }
    }

    static func jobID(_ context: APIRequestContext) throws -> JobID {
        let text = try context.parameters.require("job")
        guard let id = JobID(parsing: text) else { throw APIError.notFound("job '\(String(text.prefix(40)))'") }
        return id
    }

    /// One job with the config it ran with and its attempts; 404 when the tenant has no such job.
    static func load(_ id: JobID, tenant: TenantID, on connection: PostgresConnection, logger: Logger) async throws -> JobResource {
        let rows = try await connection.query(
            """
            SELECT \(unescaped: Self.columnList), coalesce(v.ai_config, ai_jobs.workflow -> 'config') AS ai_config FROM ai_jobs
            LEFT JOIN field_versions v ON v.id = ai_jobs.field_version_id AND v.tenant_id = ai_jobs.tenant_id
            WHERE ai_jobs.id = \(id) AND ai_jobs.tenant_id = \(tenant)
            """,
            logger: logger
        )
        var found: JobResource?
        for try await row in rows { found = try Self.job(row, withConfig: true) }
        guard var job = found else { throw APIError.notFound("job \(id)") }
        let history = try await connection.query(
            """
            SELECT * FROM (
                SELECT attempt, outcome, error_code, error_message, provider_retries, started_at, ended_at FROM ai_job_attempts
                WHERE job_id = \(id) AND tenant_id = \(tenant) ORDER BY attempt DESC LIMIT \(Self.attemptsShown)
            ) newest ORDER BY attempt
            """,
            logger: logger
        )
        var attempts: [JobAttemptResource] = []
        for try await (attempt, outcome, code, message, retries, started, ended) in history.decode((Int, String, String?, String, Int, Date?, Date?).self) {
            attempts.append(JobAttemptResource(attempt: attempt, outcome: outcome, error_code: code, error_message: message, provider_retries: retries, started_at: started, ended_at: ended))
        }
        // The job's own last attempt, when it is not one of the ended ones above.
        if job.attempt > 0, !attempts.contains(where: { $0.attempt == job.attempt }) {
            let outcome = switch job.status {
            case "processing": "running"
            case "pending": "retried"
            default: job.status
            }
            attempts.append(JobAttemptResource(
                attempt: job.attempt, outcome: outcome, error_code: job.status == "completed" ? nil : job.error_code,
                error_message: job.status == "completed" ? "" : job.error_message, provider_retries: 0,
                started_at: job.started_at, ended_at: job.completed_at
            ))
        }
        job.attempts = attempts
        let files = try await connection.query(
            """
            SELECT name, media_type, length(bytes), created_at FROM ai_job_artifacts
            WHERE job_id = \(id) AND tenant_id = \(tenant) ORDER BY name
            """,
            logger: logger
        )
        var artifacts: [JobArtifactResource] = []
        for try await (name, type, size, created) in files.decode((String, String, Int, Date).self) {
            artifacts.append(JobArtifactResource(name: name, media_type: type, size: size, created_at: created))
        }
        job.artifacts = artifacts
        return job
    }

    /// What an artifact is served as: a picture or plain data as itself; anything a browser
    /// would run or render as a page (SVG, HTML) as an opaque download. Never inline, never
    /// sniffed, never scripted: the bytes were written by model-written code.
    static func servedType(_ mediaType: String) -> String {
        ["image/png", "image/jpeg", "text/plain", "text/csv", "application/json"].contains(mediaType) ? mediaType : "application/octet-stream"
    }

    /// A job shows its newest attempts, at most this many (retry loops make long histories).
    static let attemptsShown = 100

    /// The columns of a job; a large `output_data` or `prompt_audit` is read through `shown`.
    private static func columns(output: String, audit: String) -> String {
        """
        ai_jobs.id, job_type, pipeline_id, record_id, field_name, workflow ->> 'execution_id' AS execution_id, ai_provider, model_name, \
        input_data, status, \(output), tokens_used, prompt_tokens, cached_tokens, completion_tokens, cost_cents, cost_micros, \
        processing_time_ms, error_code, error_message, retry_count, attempt, max_attempts, depends_on, cache_hit, tool_calls, \(audit), \
        ai_jobs.created_at, updated_at, started_at, completed_at
        """
    }

    /// A JSON column over 4 KiB as `{"truncated": true, "bytes": N}` (the job itself has it whole),
    /// so a page of 500 jobs stays a few megabytes at most.
    private static func shown(_ column: String) -> String {
        "CASE WHEN octet_length(\(column)::text) <= 4096 THEN \(column) "
            + "ELSE jsonb_build_object('truncated', true, 'bytes', octet_length(\(column)::text)) END AS \(column)"
    }

    private static let columnList = Self.columns(output: "output_data", audit: "prompt_audit")
    static let listColumns = Self.columns(output: Self.shown("output_data"), audit: Self.shown("prompt_audit"))

    /// `?ordering=` values and the SQL each stands for (constant text: the parameter only picks one).
    static let orderings: [String: String] = [
        "id": "id", "-id": "id DESC", "created_at": "created_at, id", "-created_at": "created_at DESC, id DESC",
        "updated_at": "updated_at, id", "-updated_at": "updated_at DESC, id DESC", "status": "status, id", "-status": "status DESC, id DESC",
        "cost_micros": "cost_micros, id", "-cost_micros": "cost_micros DESC, id DESC",
        "processing_time_ms": "processing_time_ms, id", "-processing_time_ms": "processing_time_ms DESC, id DESC",
    ]

    /// The list's filters, read and checked from the query string (also the shape of a bulk
    /// retry's `filter`).
    struct Filters: Sendable, Decodable {
        var status: String?
        var pipeline: String?
        var record_id: RecordID?
        var field_name: String?
        var job_type: String?
        var error_code: String?
        var created_after: Date?
        var created_before: Date?

        init(_ request: Request) throws(APIError) {
            self.status = request.queryString("status")
            self.pipeline = request.queryString("pipeline")
            if let text = request.queryString("record_id") {
                guard let id = RecordID(parsing: text) else { throw APIError.invalid("record_id must be a record id") }
                self.record_id = id
            }
            self.field_name = request.queryString("field_name")
            self.job_type = request.queryString("job_type")
            self.error_code = request.queryString("error_code")
            self.created_after = try Self.date(request, "created_after")
            self.created_before = try Self.date(request, "created_before")
            try self.check()
        }

        func check() throws(APIError) {
            if let status, JobStatus(rawValue: status) == nil {
                throw APIError.invalid("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            if let created_after, let created_before, created_after > created_before {
                throw APIError.invalid("created_after must not be later than created_before")
            }
        }

        private static func date(_ request: Request, _ name: String) throws(APIError) -> Date? {
            guard let text = request.queryString(name) else { return nil }
            guard let date = TimeInput.parse(text) else {
                throw APIError.invalid("\(name) must be an ISO 8601 time (2026-11-28T12:00:00Z) or date (2026-11-28)")
            }
            return date
        }
    }

    /// The WHERE clause of `filters` over `ai_jobs` (tenant first): every value bound.
    static func matching(_ filters: Filters, tenant: TenantID, pipeline: PipelineID?, select columns: String, tail: String, limit: Int, offset: Int) -> PostgresQuery {
        """
        SELECT \(unescaped: columns) FROM ai_jobs
        WHERE tenant_id = \(tenant)
          AND (\(filters.status)::text IS NULL OR status = \(filters.status))
          AND (\(pipeline)::bigint IS NULL OR pipeline_id = \(pipeline))
          AND (\(filters.record_id)::bigint IS NULL OR record_id = \(filters.record_id))
          AND (\(filters.field_name)::text IS NULL OR field_name = \(filters.field_name))
          AND (\(filters.job_type)::text IS NULL OR job_type = \(filters.job_type))
          AND (\(filters.error_code)::text IS NULL OR error_code = \(filters.error_code))
          AND (\(filters.created_after)::timestamptz IS NULL OR created_at >= \(filters.created_after))
          AND (\(filters.created_before)::timestamptz IS NULL OR created_at < \(filters.created_before))
        \(unescaped: tail) LIMIT \(limit) OFFSET \(offset)
        """
    }

    private func list(_ request: Request, _ context: APIRequestContext, _ caller: Caller) async throws -> Page<JobResource> {
        let page = try request.queryInteger("page", default: 1, range: 1...1_000_000)
        let pageSize = try request.queryInteger("page_size", default: 50, range: 1...500)
        let filters = try Filters(request)
        let orderingName = request.queryString("ordering") ?? "-id"
        guard let ordering = Self.orderings[orderingName] else {
            throw APIError.invalid("ordering must be one of \(Self.orderings.keys.sorted().joined(separator: ", "))")
        }
        var pipeline: PipelineID?
        if let reference = filters.pipeline {
            pipeline = try await self.pipelines.resolve(tenant: caller.tenant, reference, logger: context.logger).id
        }
        let offset = (page - 1) * pageSize
        // One static statement: absent filters bind NULL and drop out; the window gives the total.
        let (count, results) = try await self.gate.run(caller.tenant, context) { connection -> (Int, [JobResource]) in
            let rows = try await connection.query(
                Self.matching(
                    filters, tenant: caller.tenant, pipeline: pipeline, select: Self.listColumns + ", count(*) OVER () AS total_count",
                    tail: "ORDER BY " + ordering, limit: pageSize, offset: offset
                ),
                logger: context.logger
            )
            var count = 0
            var results: [JobResource] = []
            for try await row in rows {
                results.append(try Self.job(row))
                count = try row.makeRandomAccess()["total_count"].decode(Int.self)
            }
            return (count, results)
        }
        if results.isEmpty, page > 1 { throw APIError.notFound("page \(page)") }
        return Page(
            count: count,
            next: offset + results.count < count ? Self.pageURL(request, page: page + 1) : nil,
            previous: page > 1 ? Self.pageURL(request, page: page - 1) : nil,
            results: results
        )
    }

    /// RFC 3986's unreserved characters, ASCII only: everything else in a query is encoded.
    private static let unreserved = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")

    /// The link to another page: relative (no `Host` header or scheme is trusted or guessed),
    /// with every query value percent-encoded as it is echoed.
    private static func pageURL(_ request: Request, page: Int) -> String {
        func encoded(_ text: Substring) -> String {
            text.addingPercentEncoding(withAllowedCharacters: Self.unreserved) ?? ""
        }
        var items = request.uri.queryParameters.filter { $0.key != "page" }.map { "\(encoded($0.key))=\(encoded($0.value))" }.sorted()
        items.append("page=\(page)")
        return "\(request.uri.path)?\(items.joined(separator: "&"))"
    }

    private static func job(_ row: PostgresRow, withConfig: Bool = false) throws -> JobResource {
        let r = row.makeRandomAccess()
        let config = withConfig ? try r["ai_config"].decode(JSONValue?.self) : nil
        return JobResource(
            id: try r["id"].decode(JobID.self),
            job_type: try r["job_type"].decode(String.self),
            pipeline: try r["pipeline_id"].decode(PipelineID?.self),
            record_id: try r["record_id"].decode(RecordID?.self),
            field_name: try r["field_name"].decode(String.self),
            execution_id: try r["execution_id"].decode(String?.self),
            ai_provider: try r["ai_provider"].decode(String.self),
            model_name: try r["model_name"].decode(String.self),
            prompt_template: config?["prompt"]?.stringValue,
            ai_config: config,
            input_data: try r["input_data"].decode(JSONValue.self),
            status: try r["status"].decode(String.self),
            output_data: try r["output_data"].decode(JSONValue.self),
            tokens_used: try r["tokens_used"].decode(Int.self),
            prompt_tokens: try r["prompt_tokens"].decode(Int.self),
            cached_tokens: try r["cached_tokens"].decode(Int.self),
            completion_tokens: try r["completion_tokens"].decode(Int.self),
            cost_cents: try r["cost_cents"].decode(Int64.self),
            cost_micros: try r["cost_micros"].decode(Int64.self),
            processing_time_ms: try r["processing_time_ms"].decode(Int.self),
            error_code: try r["error_code"].decode(String?.self),
            error_message: try r["error_message"].decode(String.self),
            retry_count: try r["retry_count"].decode(Int.self),
            attempt: try r["attempt"].decode(Int.self),
            cache_hit: try r["cache_hit"].decode(Bool.self),
            prompt_audit: try r["prompt_audit"].decode(JSONValue.self),
            tool_calls: try r["tool_calls"].decode(JSONValue.self),
            max_attempts: try r["max_attempts"].decode(Int.self),
            depends_on: try r["depends_on"].decode([String].self),
            created_at: try r["created_at"].decode(Date.self),
            updated_at: try r["updated_at"].decode(Date.self),
            started_at: try r["started_at"].decode(Date?.self),
            completed_at: try r["completed_at"].decode(Date?.self),
            attempts: nil
        )
    }
}
