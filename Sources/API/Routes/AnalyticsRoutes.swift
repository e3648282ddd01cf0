import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// A share for an answer: part ÷ whole to four decimals, 0 when there is no whole.
enum Ratio {
    static func of(_ part: Int, _ whole: Int) -> Double {
        whole == 0 ? 0 : (Double(part) / Double(whole) * 10_000).rounded() / 10_000
    }
}

/// `/api/v1/ai-analytics/usage/`, `costs/`, `performance/` (`read`): the caller's tenant's usage
/// over a time range (`start`, `end`: ISO 8601 times or dates; the last 30 days by default, at
/// most 366), grouped by `group_by`. Sums are exact integers (micro-dollars, tokens), read from
/// the usage rows, which outlive the jobs they were spent on.
struct AnalyticsRoutes {
    let database: PostgresClient
    /// One analytics query per tenant at a time, under a statement timeout.
    let gate: TenantQueryGate

    init(database: PostgresClient) {
        self.database = database
        self.gate = TenantQueryGate(database: database, perTenant: 1)
    }

    /// `group_by` values and the SQL each groups by (constant text: the parameter only picks one).
    static let groupings: [String: String] = [
        "day": "to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD')",
        "model": "model_name",
        "user": "coalesce(user_name, '')",
        "pipeline": "coalesce(pipeline_id::text, '')",
        "field": "coalesce(field_name, '')",
        "operation": "operation_type",
    ]

    struct Range {
        let start: Date
        let end: Date

        init(_ request: Request) throws(APIError) {
            let now = Date()
            // A date alone as the end means that whole day (`end=2026-11-30` includes the 30th).
            var end = try Self.time(request, "end") ?? now
            if let text = request.queryString("end"), text.utf8.count == 10 { end = end.addingTimeInterval(86_400) }
            let start = try Self.time(request, "start") ?? end.addingTimeInterval(-30 * 86_400)
            guard start < end else { throw APIError.invalid("start must be earlier than end") }
            guard end.timeIntervalSince(start) <= 366 * 86_400 else { throw APIError.invalid("a range is at most 366 days") }
            self.start = start
            self.end = end
        }

        private static func time(_ request: Request, _ name: String) throws(APIError) -> Date? {
            guard let text = request.queryString(name) else { return nil }
            guard let date = TimeInput.parse(text) else { throw APIError.invalid("\(name) must be an ISO 8601 time or date (2026-11-28)") }
            return date
        }
    }

    struct UsageRow: Encodable {
        let key: String
        let requests: Int
        let tokens_used: Int64
        let prompt_tokens: Int64
        let cached_tokens: Int64
        let completion_tokens: Int64
        let cost_micros: Int64
        let cost_cents: Int64
    }

    struct UsageAnswer: ResponseEncodable {
        let start: Date
        let end: Date
        let group_by: String
        let results: [UsageRow]
        /// More groups than the 10,000 listed (the total still counts them all).
        let truncated: Bool
        let total: UsageRow
    }

    struct ModelPerformance: Encodable {
        let model: String
        let jobs: Int
        let completed: Int
        let failed: Int
        /// Processing time of completed jobs, milliseconds.
        let p50_ms: Double?
        let p95_ms: Double?
        let p99_ms: Double?
        /// Ended jobs that failed; jobs that needed more than one attempt; completed jobs answered
        /// from the cache.
        let error_rate: Double
        let retry_rate: Double
        let cache_hit_rate: Double
    }

    struct PerformanceAnswer: ResponseEncodable {
        let start: Date
        let end: Date
        let results: [ModelPerformance]
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.get("ai-analytics/usage") { request, context in
            try await self.usage(request, context, defaultGrouping: "day")
        }
        group.get("ai-analytics/costs") { request, context in
            try await self.usage(request, context, defaultGrouping: "field")
        }
        group.get("ai-analytics/performance") { request, context in
            let caller = try context.require(.read)
            let range = try Range(request)
            let results = try await self.gate.run(caller.tenant, context) { connection -> [ModelPerformance] in
                let rows = try await connection.query(
                    """
                    SELECT model_name, count(*)::bigint,
                           count(*) FILTER (WHERE status = 'completed')::bigint,
                           count(*) FILTER (WHERE status = 'failed')::bigint,
                           percentile_disc(0.50) WITHIN GROUP (ORDER BY processing_time_ms) FILTER (WHERE status = 'completed')::float8,
                           percentile_disc(0.95) WITHIN GROUP (ORDER BY processing_time_ms) FILTER (WHERE status = 'completed')::float8,
                           percentile_disc(0.99) WITHIN GROUP (ORDER BY processing_time_ms) FILTER (WHERE status = 'completed')::float8,
                           count(*) FILTER (WHERE attempt > 1)::bigint,
                           count(*) FILTER (WHERE status = 'completed' AND cache_hit)::bigint
                    FROM ai_jobs
                    WHERE tenant_id = \(caller.tenant) AND completed_at >= \(range.start) AND completed_at < \(range.end)
                      AND status IN ('completed', 'failed')
                    GROUP BY model_name ORDER BY model_name LIMIT 1000
                    """,
                    logger: context.logger
                )
                var results: [ModelPerformance] = []
                for try await (model, jobs, completed, failed, p50, p95, p99, retried, hits) in rows.decode((String, Int, Int, Int, Double?, Double?, Double?, Int, Int).self) {
                    results.append(ModelPerformance(
                        model: model, jobs: jobs, completed: completed, failed: failed, p50_ms: p50, p95_ms: p95, p99_ms: p99,
                        error_rate: Ratio.of(failed, jobs), retry_rate: Ratio.of(retried, jobs), cache_hit_rate: Ratio.of(hits, completed)
                    ))
                }
                return results
            }
            return PerformanceAnswer(start: range.start, end: range.end, results: results)
        }
    }

    private func usage(_ request: Request, _ context: APIRequestContext, defaultGrouping: String) async throws -> UsageAnswer {
        let caller = try context.require(.read)
        let range = try Range(request)
        let grouping = request.queryString("group_by") ?? defaultGrouping
        guard let expression = Self.groupings[grouping] else {
            throw APIError.invalid("group_by must be one of \(Self.groupings.keys.sorted().joined(separator: ", "))")
        }
        // One statement: the groups, and the total as the row whose grouping() is 1.
        let rows = try await self.gate.run(caller.tenant, context) { connection -> [(Bool, UsageRow)] in
            let result = try await connection.query(
                """
                SELECT grouping(\(unescaped: expression))::int AS whole, coalesce(\(unescaped: expression), '') AS key, count(*)::bigint,
                       coalesce(sum(tokens_used), 0)::bigint, coalesce(sum(prompt_tokens), 0)::bigint, coalesce(sum(cached_tokens), 0)::bigint,
                       coalesce(sum(completion_tokens), 0)::bigint, coalesce(sum(cost_micros), 0)::bigint
                FROM ai_usage
                WHERE tenant_id = \(caller.tenant) AND created_at >= \(range.start) AND created_at < \(range.end)
                GROUP BY ROLLUP (\(unescaped: expression))
                ORDER BY whole DESC, key LIMIT 10001
                """,
                logger: context.logger
            )
            var rows: [(Bool, UsageRow)] = []
            for try await (whole, key, requests, tokens, prompt, cached, completion, cost) in result.decode((Int, String, Int, Int64, Int64, Int64, Int64, Int64).self) {
                rows.append((whole == 1, UsageRow(
                    key: key, requests: requests, tokens_used: tokens, prompt_tokens: prompt, cached_tokens: cached,
                    completion_tokens: completion, cost_micros: cost, cost_cents: Microdollars(cost).roundedCents
                )))
            }
            return rows
        }
        let total = rows.first { $0.0 }?.1
            ?? UsageRow(key: "", requests: 0, tokens_used: 0, prompt_tokens: 0, cached_tokens: 0, completion_tokens: 0, cost_micros: 0, cost_cents: 0)
        let groups = rows.filter { !$0.0 }.map(\.1)
        return UsageAnswer(
            start: range.start, end: range.end, group_by: grouping, results: Array(groups.prefix(10_000)), truncated: groups.count > 10_000, total: total
        )
    }
}
