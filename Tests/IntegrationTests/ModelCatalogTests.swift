import Foundation
import OneoWire
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// Prices and parameters from the model catalog, through the real stack: an unpriced model is
/// refused when configured, a reasoning model gets `max_completion_tokens` and no temperature,
/// cached prompt tokens are priced as such, and an operator's `--models` file adds a model.
@Suite("model catalog: prices and parameters", .timeLimit(.minutes(3)))
struct ModelCatalogTests {
    /// The job once it is in `status`.
    static func finished(_ stack: TestStack, _ job: String, _ status: String) async throws -> JSONValue {
        var done: JSONValue = .null
        try await waitUntil("job \(job) to be \(status)") {
            done = try await stack.api.get("/ai-jobs/\(job)/").body
            return done["status"]?.stringValue == status
        }
        return done
    }

    static func pipeline(_ stack: TestStack) async throws {
        #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
    }

    @Test("a field naming a model without a price is refused with 422; a priced one is accepted")
    func unpricedRefused() async throws {
        try await TestStack.with { stack in
            try await Self.pipeline(stack)
            let refused = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "AI", "slug": "ai", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}", "model": "gpt-9-ultra"],
            ])
            #expect(refused.status == 422)
            #expect(refused["message"]?.stringValue?.contains("'gpt-9-ultra' has no price") == true)
            let dated = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "AI", "slug": "ai", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}", "model": "gpt-4o-mini-2024-07-18"],
            ])
            #expect(dated.status == 201)
        }
    }

    @Test("a reasoning model is sent max_completion_tokens and no temperature; cached tokens are priced at the cached price")
    func parametersAndCachedPrice() async throws {
        try await TestStack.with { stack in
            try await Self.pipeline(stack)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "AI", "slug": "ai", "field_type": "ai_generated",
                "ai_config": ["prompt": "Hi {name}", "model": "gpt-5-mini", "max_tokens": 300, "system_message": "Be brief. [sim-cached: 40]"],
            ])
            try #require(field.status == 201, "\(field.body)")
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let job = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            let done = try await Self.finished(stack, job, "completed")
            let body = try #require(try await stack.providerRequests().first?.body)
            let sent = try JSONValue.parse(Array(body.utf8))
            #expect(sent["max_completion_tokens"]?.integerValue == 300)
            #expect(sent["max_tokens"] == nil)
            #expect(sent["temperature"] == nil)
            let prompt = try #require(done["prompt_tokens"]?.integerValue)
            let completion = try #require(done["completion_tokens"]?.integerValue)
            #expect(done["cached_tokens"]?.integerValue == 40)
            // gpt-5-mini: $0.25 input, $0.025 cached input, $2.00 output per million; each part rounded up.
            func up(_ tokens: Int64, _ perMillion: Int64) -> Int64 { (tokens * perMillion + 999_999) / 1_000_000 }
            let expected = up(prompt - 40, 250_000) + up(40, 25_000) + up(completion, 2_000_000)
            #expect(done["cost_micros"]?.integerValue == expected)
            #expect(try await stack.count("SELECT cost_micros FROM ai_usage WHERE job_id = \(Int64(job)!)") == Int(expected))
            #expect(try await stack.count("SELECT cached_tokens::bigint FROM ai_usage WHERE job_id = \(Int64(job)!)") == 40)
        }
    }

    @Test("serve --models adds a model with its price; a bad file stops serve with a message naming it")
    func operatorModels() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-models-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let file = directory + "/models.json"
        try Data(#"{"models": {"local-llama": {"input": 1000000, "output": 2000000}}}"#.utf8).write(to: URL(fileURLWithPath: file))
        try await TestStack.with(serveOptions: ["--models", file]) { stack in
            try await Self.pipeline(stack)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "AI", "slug": "ai", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}", "model": "local-llama"],
            ])
            try #require(field.status == 201, "\(field.body)")
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let job = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            let done = try await Self.finished(stack, job, "completed")
            let prompt = try #require(done["prompt_tokens"]?.integerValue)
            let completion = try #require(done["completion_tokens"]?.integerValue)
            #expect(done["cost_micros"]?.integerValue == prompt + 2 * completion)
        }
        try Data(#"{"models": {"bad": {"input": -5, "output": 1}}}"#.utf8).write(to: URL(fileURLWithPath: file))
        await #expect(throws: (any Error).self) {
            try await TestStack.with(serveOptions: ["--models", file]) { _ in }
        }
    }

    @Test("a job whose model lost its price (an operator's catalog changed) fails model_unpriced and is never called")
    func unpricedJobNeverCalled() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.pipeline(stack)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "AI", "slug": "ai", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}"],
            ])
            try #require(field.status == 201)
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let job = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            try await stack.withDatabase { client, logger in
                _ = try await client.query("UPDATE ai_jobs SET model_name = 'retired-model' WHERE id = \(Int64(job)!)", logger: logger)
            }
            try await stack.cli(["tenant", "start", stack.tenant])
            let done = try await Self.finished(stack, job, "failed")
            #expect(done["error_code"] == "model_unpriced")
            #expect(try await stack.providerRequests().isEmpty)
        }
    }
}
