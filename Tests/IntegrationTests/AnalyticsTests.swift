import Foundation
import OneoWire
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// The reference's analytics endpoints against the real stack: exact sums per group, the caller's
/// tenant only, and the performance figures per model.
@Suite("analytics: usage, costs, performance", .timeLimit(.minutes(3)))
struct AnalyticsTests {
    /// A JSON number whichever way it was written (`1` or `1.0`).
    static func number(_ value: JSONValue?) -> Double? {
        switch value {
        case .integer(let integer)?: Double(integer)
        case .double(let double)?: double
        default: nil
        }
    }

    @Test("usage and costs sum the usage rows exactly by day, model, field and user; performance has percentiles and rates; another tenant sees none")
    func sums() async throws {
        // No retries in place: the pitch's one refusal costs it an attempt, which the retry rate counts.
        try await TestStack.with(tunables: ["ONEO_QUEUE_RETRY_DELAY_MS": "10", "ONEO_PROCESSORS_PROVIDER_RETRIES": "0"]) { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            for (slug, model, prompt) in [("ai_summary", "gpt-4o-mini", "Summarize {name}"), ("ai_pitch", "gpt-4.1-mini", "Pitch {name} [sim-fault: 500 times=1]")] {
                let field = try await stack.api.post("/pipelines/leads/fields/", [
                    "name": .string(slug), "slug": .string(slug), "field_type": "ai_generated", "ai_config": ["prompt": .string(prompt), "model": .string(model)],
                ])
                try #require(field.status == 201, "\(field.body)")
            }
            var jobs: [String] = []
            for name in ["Ada", "Bob", "Cy"] {
                let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(name)]])
                jobs += created["triggered_jobs"]?.arrayValue?.compactMap { $0["job_id"]?.stringValue } ?? []
            }
            #expect(jobs.count == 6)
            try await waitUntil("every job to complete") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 6
            }
            let cost = Int64(try await stack.count("SELECT sum(cost_micros)::bigint FROM ai_jobs"))
            let byField = try await stack.api.get("/ai-analytics/costs/?group_by=field")
            #expect(byField.status == 200, "\(byField.body)")
            #expect(byField["total"]?["cost_micros"]?.integerValue == cost)
            #expect(byField["total"]?["requests"]?.integerValue == 6)
            let fields = byField["results"]?.arrayValue ?? []
            #expect(fields.compactMap { $0["key"]?.stringValue } == ["ai_pitch", "ai_summary"])
            #expect(fields.compactMap { $0["cost_micros"]?.integerValue }.reduce(0, +) == cost)
            let summaryCost = Int64(try await stack.count("SELECT sum(cost_micros)::bigint FROM ai_jobs WHERE field_name = 'ai_summary'"))
            #expect(fields.last?["cost_micros"]?.integerValue == summaryCost)
            let byModel = try await stack.api.get("/ai-analytics/usage/?group_by=model&start=\(ISO8601DateFormatter.string(from: Date().addingTimeInterval(-100 * 86_400), timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate]))")
            #expect(byModel["results"]?.arrayValue?.compactMap { $0["key"]?.stringValue } == ["gpt-4.1-mini", "gpt-4o-mini"])
            let tokens = Int64(try await stack.count("SELECT sum(tokens_used)::bigint FROM ai_jobs"))
            #expect(byModel["total"]?["tokens_used"]?.integerValue == tokens)
            #expect(try await stack.api.get("/ai-analytics/usage/")["results"]?.arrayValue?.count == 1, "one day")
            // A date alone as the end includes that whole day: today's usage is in a range ending today.
            func day(_ date: Date) -> String { ISO8601DateFormatter.string(from: date, timeZone: TimeZone(identifier: "UTC")!, formatOptions: [.withFullDate]) }
            let lastMonth = day(Date().addingTimeInterval(-30 * 86_400))
            #expect(try await stack.api.get("/ai-analytics/costs/?start=\(lastMonth)&end=\(day(Date()))")["total"]?["cost_micros"]?.integerValue == cost)
            #expect(try await stack.api.get("/ai-analytics/usage/?group_by=user")["results"]?.arrayValue?.first?["key"] == "api")

            let performance = try await stack.api.get("/ai-analytics/performance/")
            let models = performance["results"]?.arrayValue ?? []
            #expect(models.count == 2)
            let pitch = try #require(models.first { $0["model"] == "gpt-4.1-mini" })
            #expect(pitch["completed"]?.integerValue == 3)
            #expect(Self.number(pitch["retry_rate"]) == 1, "every pitch needed a second attempt")
            #expect(pitch["p50_ms"] != nil && pitch["p99_ms"] != nil)
            #expect(Self.number(models.first { $0["model"] == "gpt-4o-mini" }?["retry_rate"]) == 0)

            #expect(try await stack.api.get("/ai-analytics/usage/?group_by=color").status == 422)
            #expect(try await stack.api.get("/ai-analytics/usage/?start=2026-12-01&end=2026-11-01").status == 422)
            #expect(try await stack.api.get("/ai-analytics/usage/?start=2020-01-01&end=2026-01-01").status == 422)
            let other = try await stack.addTenant("globex", providerKey: "test-provider-key-2")
            #expect(try await other.get("/ai-analytics/costs/")["total"]?["cost_micros"]?.integerValue == 0)
            #expect(try await other.get("/ai-analytics/performance/")["results"]?.arrayValue?.isEmpty == true)
        }
    }
}
