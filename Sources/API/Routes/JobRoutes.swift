import Foundation
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// `/api/v1/ai-jobs/`: the tenant's jobs, filtered and paginated like Django REST framework.
struct JobRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore

    func add(to group: RouterGroup<APIRequestContext>) {
        group.get("ai-jobs") { request, context in
            let caller = try context.require(.read)
            return try await self.list(request, context, caller)
        }
        group.get("ai-jobs/:job") { request, context in
            let caller = try context.require(.read)
            let text = try context.parameters.require("job")
            guard let id = JobID(parsing: text) else { throw APIError.notFound("job '\(text)'") }
            // One job shows the config it ran with; a list never does (templates are up to 32 KiB).
            let found = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> JobResource? in
                let rows = try await connection.query(
                    """
                    SELECT \(unescaped: Self.columnList), v.ai_config FROM ai_jobs
                    LEFT JOIN field_versions v ON v.id = ai_jobs.field_version_id AND v.tenant_id = ai_jobs.tenant_id
                    WHERE ai_jobs.id = \(id) AND ai_jobs.tenant_id = \(caller.tenant)
                    """,
                    logger: context.logger
                )
                for try await row in rows { return try Self.job(row, withConfig: true) }
                return nil
            }
            guard let found else { throw APIError.notFound("job \(id)") }
            return found
        }
    }

    private static let columnList = """
        ai_jobs.id, job_type, pipeline_id, record_id, field_name, ai_provider, model_name, \
        input_data, status, output_data, tokens_used, prompt_tokens, completion_tokens, cost_cents, cost_micros, \
        processing_time_ms, error_code, error_message, retry_count, attempt, cache_hit, prompt_audit, ai_jobs.created_at, updated_at, completed_at
        """

    private func list(_ request: Request, _ context: APIRequestContext, _ caller: Caller) async throws -> Page<JobResource> {
        let page = try request.queryInteger("page", default: 1, range: 1...1_000_000)
        let pageSize = try request.queryInteger("page_size", default: 50, range: 1...500)
        let status = request.queryString("status")
        if let status, JobStatus(rawValue: status) == nil {
            throw APIError.invalid("status must be one of \(JobStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        var pipeline: PipelineID?
        if let reference = request.queryString("pipeline") {
            pipeline = try await self.pipelines.resolve(tenant: caller.tenant, reference, logger: context.logger).id
        }
        var record: RecordID?
        if let text = request.queryString("record_id") {
            guard let id = RecordID(parsing: text) else { throw APIError.invalid("record_id must be a record id") }
            record = id
        }
        let field = request.queryString("field_name")
        let offset = (page - 1) * pageSize
        // One static statement: absent filters bind NULL and drop out; the window gives the total.
        let (count, results) = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> (Int, [JobResource]) in
            let rows = try await connection.query(
                """
                SELECT \(unescaped: Self.columnList), count(*) OVER () AS total_count FROM ai_jobs
                WHERE tenant_id = \(caller.tenant)
                  AND (\(status)::text IS NULL OR status = \(status))
                  AND (\(pipeline)::bigint IS NULL OR pipeline_id = \(pipeline))
                  AND (\(record)::bigint IS NULL OR record_id = \(record))
                  AND (\(field)::text IS NULL OR field_name = \(field))
                ORDER BY id DESC LIMIT \(pageSize) OFFSET \(offset)
                """,
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
            pipeline: try r["pipeline_id"].decode(PipelineID.self),
            record_id: try r["record_id"].decode(RecordID.self),
            field_name: try r["field_name"].decode(String.self),
            ai_provider: try r["ai_provider"].decode(String.self),
            model_name: try r["model_name"].decode(String.self),
            prompt_template: config?["prompt"]?.stringValue,
            ai_config: config,
            input_data: try r["input_data"].decode(JSONValue.self),
            status: try r["status"].decode(String.self),
            output_data: try r["output_data"].decode(JSONValue.self),
            tokens_used: try r["tokens_used"].decode(Int.self),
            prompt_tokens: try r["prompt_tokens"].decode(Int.self),
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
            created_at: try r["created_at"].decode(Date.self),
            updated_at: try r["updated_at"].decode(Date.self),
            completed_at: try r["completed_at"].decode(Date?.self)
        )
    }
}
