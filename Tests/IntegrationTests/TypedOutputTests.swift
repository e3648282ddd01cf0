import Foundation
import OneoWire
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// Output types through the real stack: what is asked of the provider, what the field gets, the
/// one repair of an invalid reply, and `output_invalid` when the repair fails too.
@Suite("typed outputs", .timeLimit(.minutes(3)))
struct TypedOutputTests {
    static func field(_ stack: TestStack, _ slug: String, _ config: JSONValue) async throws -> JSONClient.Response {
        try await stack.api.post("/pipelines/leads/fields/", ["name": .string(slug), "slug": .string(slug), "field_type": "ai_generated", "ai_config": config])
    }

    static func finished(_ stack: TestStack, _ job: String) async throws -> JSONValue {
        var done: JSONValue = .null
        try await waitUntil("job \(job) to finish") {
            done = try await stack.api.get("/ai-jobs/\(job)/").body
            return ["completed", "failed"].contains(done["status"]?.stringValue ?? "")
        }
        return done
    }

    @Test("json, structured, number and selects: the request asks for the shape, the record gets a JSON value of it")
    func eachType() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let schema: JSONValue = [
                "type": "object", "additionalProperties": false, "required": ["sentiment", "score"],
                "properties": ["sentiment": ["type": "string", "enum": ["positive", "negative"]], "score": ["type": "number"]],
            ]
            let configs: [(String, JSONValue)] = [
                ("ai_json", ["prompt": "Describe {name}", "output_type": "json"]),
                ("ai_structured", ["prompt": "Judge {name}", "output_type": "structured", "output_schema": schema]),
                ("ai_number", ["prompt": "Score {name}", "output_type": "number"]),
                ("ai_single", ["prompt": "Temperature of {name}", "output_type": "single_select", "choices": ["hot", "warm", "cold"]]),
                ("ai_multi", ["prompt": "Tags of {name}", "output_type": "multi_select", "choices": ["vip", "new", "churn-risk"]]),
            ]
            for (slug, config) in configs {
                let created = try await Self.field(stack, slug, config)
                try #require(created.status == 201, "\(slug): \(created.body)")
            }
            let record = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            for job in record["triggered_jobs"]?.arrayValue?.compactMap({ $0["job_id"]?.stringValue }) ?? [] {
                #expect(try await Self.finished(stack, job)["status"] == "completed")
            }
            let id = try #require(record["id"]?.integerValue)
            let data = try #require(try await stack.api.get("/pipelines/leads/records/\(id)/")["data"])
            #expect(data["ai_json"]?["summary"]?.stringValue?.isEmpty == false)
            #expect(data["ai_structured"] == ["sentiment": "positive", "score": 42])
            #expect(data["ai_number"] == 42)
            #expect(data["ai_single"] == "hot")
            #expect(data["ai_multi"] == ["vip"])
            let requests = try await stack.providerRequests().map { try JSONValue.parse(Array($0.body.utf8)) }
            let formats = requests.compactMap { $0["response_format"]?["type"]?.stringValue }
            #expect(formats.sorted() == ["json_object", "json_schema", "json_schema", "json_schema", "json_schema"])
            let strict = requests.first { $0["response_format"]?["json_schema"]?["schema"] == schema }
            #expect(strict?["response_format"]?["json_schema"]?["strict"] == true)
        }
    }

    @Test("an invalid reply is repaired once (both calls' tokens counted); invalid again, the job fails output_invalid")
    func repairOnce() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Company", "slug": "company", "field_type": "text"]).status == 201)
            #expect(try await Self.field(stack, "ai_once", ["prompt": "Score {name} [sim-fault: bad-json-once]", "output_type": "number"]).status == 201)
            #expect(try await Self.field(stack, "ai_never", ["prompt": "Rate {company} [sim-fault: bad-json]", "output_type": "json"]).status == 201)
            let record = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada", "company": "Initech"]])
            let jobs = try #require(record["triggered_jobs"]?.arrayValue)
            let once = try await Self.finished(stack, try #require(jobs.first { $0["field"] == "ai_once" }?["job_id"]?.stringValue))
            #expect(once["status"] == "completed")
            #expect(once["output_data"]?["content"] == 42)
            let never = try await Self.finished(stack, try #require(jobs.first { $0["field"] == "ai_never" }?["job_id"]?.stringValue))
            #expect(never["status"] == "failed")
            #expect(never["error_code"] == "output_invalid")
            #expect(never["error_message"]?.stringValue?.contains("not JSON") == true)
            // Both calls were answered, so both are billed: the failed attempt has its usage row.
            let neverID = try #require(Int64(never["id"]?.integerValue ?? 0))
            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE job_id = \(neverID) AND tokens_used > 0 AND cost_micros > 0") == 1)
            let bodies = try await stack.providerRequests().map(\.body)
            #expect(bodies.count == 4, "two calls each: the answer and its repair")
            #expect(bodies.filter { $0.contains("That answer is not valid") }.count == 2)
            // The repaired job's tokens cover both calls: more than one call's prompt.
            let single = try #require(once["prompt_tokens"]?.integerValue)
            #expect(single > 0 && (once["tokens_used"]?.integerValue ?? 0) > single)
        }
    }

    @Test("bad typed configs are refused with 422 naming the key")
    func badConfigs() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let bad: [(JSONValue, String)] = [
                (["prompt": "{name}", "output_type": "single_select"], "choices"),
                (["prompt": "{name}", "output_type": "multi_select", "choices": ["a", "a"]], "choices"),
                (["prompt": "{name}", "output_type": "text", "choices": ["a"]], "choices"),
                (["prompt": "{name}", "output_type": "structured"], "output_schema"),
                (["prompt": "{name}", "output_type": "structured", "output_schema": ["type": "string"]], "output_schema"),
                (["prompt": "{name}", "output_type": "json", "output_schema": ["type": "object", "properties": [:]]], "output_schema"),
                (["prompt": "{name}", "output_type": "xml"], "output_type"),
                // Strict structured output needs every property required and no others allowed.
                (["prompt": "{name}", "output_type": "structured", "output_schema": ["type": "object", "properties": ["a": ["type": "string"]]]], "output_schema"),
                // A model that takes no JSON mode cannot give a typed output.
                (["prompt": "{name}", "output_type": "json", "model": "gpt-4"], "output_type"),
                (["prompt": "{name}", "output_type": "number", "model": "gpt-4-turbo"], "output_type"),
            ]
            for (config, key) in bad {
                let refused = try await Self.field(stack, "ai_x", config)
                #expect(refused.status == 422, "\(config)")
                #expect(refused["message"]?.stringValue?.contains("ai_config.\(key)") == true, "\(refused.body)")
            }
        }
    }
}
