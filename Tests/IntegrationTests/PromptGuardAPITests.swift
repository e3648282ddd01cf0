import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import StackControl
import Testing

// Test data only: AKIAIOSFODNN7EXAMPLE is the example key of AWS's own documentation, and the
// card and SSN are made-up numbers shaped to trip the detectors.

/// The guard at the API edge: configs that would leak are refused, the preview shows exactly what
/// would be sent without calling the provider, and each job records its audit.
@Suite("prompt guard through the API", .timeLimit(.minutes(3)))
struct PromptGuardAPITests {
    static func makePipeline(_ stack: TestStack) async throws {
        try #require(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        for (name, slug, type) in [("Name", "name", "text"), ("Notes", "notes", "textarea"), ("SSN", "ssn", "text"), ("Billing", "billing", "json"), ("Deal", "deal", "currency")] {
            try #require(try await stack.api.post("/pipelines/leads/fields/", ["name": .string(name), "slug": .string(slug), "field_type": .string(type)]).status == 201)
        }
    }

    @Test("a prompt naming an excluded or sensitive field, or an AI field cycle, is refused with 422")
    func refusesLeakyConfigs() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.makePipeline(stack)
            let sensitive = try await stack.api.post("/pipelines/leads/fields/", ["name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "About {name}: {ssn}"]])
            #expect(sensitive.status == 422)
            #expect(sensitive["message"]?.stringValue?.contains("'{ssn}' at position 14") == true)
            let excluded = try await stack.api.post("/pipelines/leads/fields/", ["name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "{notes}", "excluded_fields": ["Notes"]]])
            #expect(excluded.status == 422)
            #expect(excluded["message"]?.stringValue?.contains("excluded_fields") == true)
            let nested = try await stack.api.post("/pipelines/leads/fields/", ["name": "S", "slug": "s", "field_type": "ai_generated", "ai_config": ["prompt": "{billing.card_number}"]])
            #expect(nested.status == 422)

            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "A", "slug": "a", "field_type": "ai_generated", "ai_config": ["prompt": "About {name}"]]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "B", "slug": "b", "field_type": "ai_generated", "ai_config": ["prompt": "Given {a}"]]).status == 201)
            let selfReference = try await stack.api.post("/pipelines/leads/fields/", ["name": "C", "slug": "c", "field_type": "ai_generated", "ai_config": ["prompt": "Again {c}"]])
            #expect(selfReference.status == 422)
            #expect(selfReference["message"]?.stringValue?.contains("depend on itself") == true)
        }
    }

    @Test("the preview returns the exact redacted prompt, the audit and the worst-case cost, with no provider call")
    func preview() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.makePipeline(stack)
            let data: JSONValue = [
                "name": "Jane", "notes": "card 4111 1111 1111 1111, mail jane@example.com", "ssn": "123-45-6789",
                "billing": ["city": "Oslo", "iban": "DE89370400440532013000"], "deal": ["amount": 1234.5, "currency": "EUR"],
            ]
            let response = try await stack.api.post("/ai/preview/", [
                "pipeline": "leads", "data": data,
                "ai_config": ["prompt": "Summarize {name}: {*}", "redact": ["email"], "max_tokens": 100, "model": "gpt-4o-mini"],
            ])
            #expect(response.status == 200, "\(response.body)")
            let prompt = try #require(response["prompt"]?.stringValue)
            #expect(prompt == "Summarize <data>Jane</data>: \n<record_data>\nName: Jane\nNotes: card [REDACTED:card], mail [REDACTED:email]\n"
                + "Billing: {\"city\":\"Oslo\"}\nDeal: EUR 1,234.50\n</record_data>\n")
            #expect(response["excluded_fields"] == ["ssn"])
            #expect(response["excluded_keys"]?.integerValue == 1)
            #expect(response["redactions"] == ["card": 1, "email": 1])
            let bytes = Int64(prompt.utf8.count)
            let tokens = try #require(response["estimated_input_tokens"]?.integerValue)
            #expect(tokens > 0 && tokens <= bytes + 16)
            let worstCase = try #require(response["worst_case_cost_micros"]?.integerValue)
            #expect(worstCase >= (100 * 600_000 + 999_999) / 1_000_000, "covers max_tokens of output")
            #expect(try await stack.providerRequests().isEmpty, "no provider call")

            let created = try await stack.api.post("/pipelines/leads/records/", ["data": data])
            let id = try #require(created["id"]?.integerValue)
            let byRecord = try await stack.api.post("/ai/preview/", ["pipeline": "leads", "record_id": .integer(id), "ai_config": ["prompt": "{name} #{record_id}"]])
            #expect(byRecord["prompt"] == .string("<data>Jane</data> #\(id)"))
        }
    }

    @Test("a job records its guard audit, counts only")
    func jobAudit() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Summary", "slug": "summary", "field_type": "ai_generated", "ai_config": ["prompt": "{*}"]]).status == 201)
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Jane", "notes": "key AKIAIOSFODNN7EXAMPLE", "ssn": "123-45-6789"]])
            let jobID = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            try await waitUntil("the job to complete") { try await stack.api.get("/ai-jobs/\(jobID)/")["status"] == "completed" }
            let job = try await stack.api.get("/ai-jobs/\(jobID)/")
            #expect(job["prompt_audit"]?["excluded_fields"]?.integerValue == 1)
            #expect(job["prompt_audit"]?["redactions"] == ["aws_key": 1])
            #expect(job.body.compactJSON.contains("AKIAIOSFODNN7EXAMPLE") == false)
            let sent = try await stack.providerRequests()
            #expect(sent.count == 1)
            #expect(sent.first?.body.contains("AKIAIOSFODNN7EXAMPLE") == false)
            #expect(sent.first?.body.contains("123-45-6789") == false)
        }
    }

    @Test("a tenant's own sensitive names, set by the operator, apply to the preview and to running processors")
    func tenantSensitiveNames() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Base salary", "slug": "base_salary", "field_type": "number"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Summary", "slug": "summary", "field_type": "ai_generated", "ai_config": ["prompt": "{*}"]]).status == 201)
            let output = try await ManagedProcess.run(
                TestServices.executable("oneo-ai"),
                ["tenant", "set-sensitive-fields", stack.tenant, "--names", "salary, medical", "--data-dir", stack.directory + "/data"],
                environment: ["DATABASE_URL": stack.databaseURL], logFile: stack.directory + "/cli-sensitive.log"
            )
            #expect(output.contains("salary, medical"))
            // The API caches a token's tenant for five seconds: wait for the change, not a fixed time.
            try await waitUntil("the preview to withhold base_salary", timeout: .seconds(20)) {
                let preview = try await stack.api.post("/ai/preview/", ["pipeline": "leads", "data": ["name": "Jane", "base_salary": 123456], "ai_config": ["prompt": "{*}"]])
                return preview["excluded_fields"]?.arrayValue?.contains("base_salary") == true
            }
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Jane", "base_salary": 987654]])
            let jobID = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            try await waitUntil("the job to complete") { try await stack.api.get("/ai-jobs/\(jobID)/")["status"] == "completed" }
            let sent = try await stack.providerRequests()
            #expect(sent.count == 1)
            #expect(sent.first?.body.contains("987654") == false, "the processor applied the new name without a restart")
            #expect(sent.first?.body.contains("Jane") == true)
        }
    }
}
