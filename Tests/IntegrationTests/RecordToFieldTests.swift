import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import StackControl
import PostgresNIO
import Testing

/// The walking skeleton end to end: real `oneo-ai serve` process tree, real PostgreSQL and Redis,
/// the provider simulator at the HTTP boundary.
@Suite("record change → AI field, end to end", .timeLimit(.minutes(3)))
struct RecordToFieldTests {
    static let leadFields: [(name: String, slug: String)] = [("Name", "name"), ("Company", "company"), ("Industry", "industry"), ("Email", "email"), ("SSN", "ssn")]

    /// Pipeline `leads` with the demo's fields and an AI summary over `{*}` without the SSN.
    static func makeLeads(_ stack: TestStack, aiConfig: JSONValue) async throws {
        let pipeline = try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"])
        try #require(pipeline.status == 201, "pipeline: \(pipeline.body)")
        for field in Self.leadFields {
            let created = try await stack.api.post("/pipelines/leads/fields/", ["name": .string(field.name), "slug": .string(field.slug), "field_type": "text"])
            try #require(created.status == 201, "field \(field.slug): \(created.body)")
        }
        let ai = try await stack.api.post("/pipelines/leads/fields/", ["name": "AI Summary", "slug": "ai_summary", "field_type": "ai_generated", "ai_config": aiConfig])
        try #require(ai.status == 201, "ai field: \(ai.body)")
    }

    static let summaryConfig: JSONValue = ["prompt": "Create a brief summary of this customer: {*}", "excluded_fields": ["ssn"], "model": "gpt-4o-mini"]

    static let jane: JSONValue = ["data": ["name": "Jane Doe", "company": "Initech", "industry": "Software", "email": "jane@initech.example", "ssn": "123-45-6789"]]

    @Test("a created record gets its AI field filled; the job completes with tokens, cost and time; one usage row")
    func createdRecordIsFilled() async throws {
        let status = try await TestStack.with { stack in
            try await Self.makeLeads(stack, aiConfig: Self.summaryConfig)
            let created = try await stack.api.post("/pipelines/leads/records/", Self.jane)
            #expect(created.status == 201)
            let recordID = try #require(created["id"]?.integerValue)
            let triggered = try #require(created["triggered_jobs"]?.arrayValue)
            #expect(triggered.count == 1)
            #expect(triggered.first?["field"] == "ai_summary")
            #expect(triggered.first?["status"] == "queued_on_commit")
            let jobID = try #require(triggered.first?["job_id"]?.stringValue)

            try await waitUntil("job \(jobID) to complete") {
                try await stack.api.get("/ai-jobs/\(jobID)/")["status"] == "completed"
            }
            let job = try await stack.api.get("/ai-jobs/\(jobID)/")
            #expect(job["field_name"] == "ai_summary")
            #expect(job["record_id"]?.integerValue == recordID)
            let promptTokens = try #require(job["prompt_tokens"]?.integerValue)
            let completionTokens = try #require(job["completion_tokens"]?.integerValue)
            #expect(promptTokens > 0 && completionTokens > 0)
            #expect(job["tokens_used"]?.integerValue == promptTokens + completionTokens)
            // gpt-4o-mini: $0.15 / $0.60 per million tokens, rounded up to whole micro-dollars.
            let expectedCost = (promptTokens * 150_000 + 999_999) / 1_000_000 + (completionTokens * 600_000 + 999_999) / 1_000_000
            #expect(job["cost_micros"]?.integerValue == expectedCost)
            #expect(job["cost_cents"]?.integerValue == (expectedCost + 5_000) / 10_000)
            #expect((job["processing_time_ms"]?.integerValue ?? -1) >= 0)
            #expect(job["attempt"]?.integerValue == 1)
            #expect(job["completed_at"] != nil && job["completed_at"] != .null)

            let record = try await stack.api.get("/pipelines/leads/records/\(recordID)/")
            let summary = try #require(record["data"]?["ai_summary"]?.stringValue)
            #expect(summary.contains("Jane Doe"))
            #expect(summary == job["output_data"]?["content"]?.stringValue)
            #expect(record["version"]?.integerValue == 2)

            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE job_id = \(Int64(jobID)!)") == 1)
            let usageCost = try await stack.count("SELECT cost_micros::bigint FROM ai_usage WHERE job_id = \(Int64(jobID)!)")
            #expect(Int64(usageCost) == expectedCost)

            let requests = try await stack.providerRequests()
            #expect(requests.count == 1)
            #expect(requests.first?.authorization == "Bearer test-provider-key-1")
        }
        #expect(status == 0, "serve exits 0 on SIGTERM")
    }

    @Test("no request the provider receives contains an excluded field's value")
    func excludedFieldsNeverLeave() async throws {
        try await TestStack.with { stack in
            try await Self.makeLeads(stack, aiConfig: Self.summaryConfig)
            var ssns: [String] = []
            for index in 0..<5 {
                let ssn = "900-5\(index)-77\(index)\(index)"
                ssns.append(ssn)
                let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string("Person \(index)"), "company": "Globex", "ssn": .string(ssn)]])
                #expect(created.status == 201)
            }
            try await waitUntil("all five jobs to complete") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 5
            }
            let requests = try await stack.providerRequests()
            #expect(requests.count == 5)
            for request in requests {
                #expect(request.body.contains("Globex"), "the prompt carries the visible fields")
                for ssn in ssns { #expect(!request.body.contains(ssn), "an SSN reached the provider") }
                #expect(!request.body.contains("SSN:"))
            }
        }
    }

    @Test("a PATCH of a non-trigger field queues nothing; a PATCH of a trigger field queues one job")
    func patchTriggersOnlyOnTriggerFields() async throws {
        try await TestStack.with { stack in
            var config = Self.summaryConfig.objectValue!
            config["trigger_fields"] = ["company", "industry"]
            try await Self.makeLeads(stack, aiConfig: .object(config))
            let created = try await stack.api.post("/pipelines/leads/records/", Self.jane)
            let id = try #require(created["id"]?.integerValue)
            try await waitUntil("the first job to complete") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 1
            }

            let untouched = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["email": "jane@globex.example"]])
            #expect(untouched.status == 200)
            #expect(untouched["triggered_jobs"]?.arrayValue?.isEmpty == true)
            let unchanged = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["company": "Initech"]])
            #expect(unchanged["triggered_jobs"]?.arrayValue?.isEmpty == true, "writing the same value is no change")
            #expect(try await stack.api.get("/ai-jobs/")["count"]?.integerValue == 1)

            let moved = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["company": "Globex"]])
            #expect(moved["triggered_jobs"]?.arrayValue?.count == 1)
            try await waitUntil("the second job to complete") {
                try await stack.api.get("/ai-jobs/?status=completed&record_id=\(id)&field_name=ai_summary")["count"]?.integerValue == 2
            }
            let record = try await stack.api.get("/pipelines/leads/records/\(id)/")
            #expect(record["data"]?["ai_summary"]?.stringValue?.contains("Globex") == true)
        }
    }

    @Test("two PATCHes before the processor runs leave one pending job, which then runs on the latest data")
    func newerChangeSupersedesPendingJob() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.makeLeads(stack, aiConfig: Self.summaryConfig)
            let created = try await stack.api.post("/pipelines/leads/records/", Self.jane)
            let id = try #require(created["id"]?.integerValue)
            let first = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["company": "Globex"]])
            let second = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["company": "Hooli"]])
            let jobIDs = [created, first, second].compactMap { $0["triggered_jobs"]?.arrayValue?.first?["job_id"] }
            #expect(jobIDs.count == 3)
            #expect(Set(jobIDs).count == 1, "every change updated the one pending job")
            let pending = try await stack.api.get("/ai-jobs/?status=pending")
            #expect(pending["count"]?.integerValue == 1)
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs") == 1)

            try await stack.cli(["tenant", "start", stack.tenant])
            try await waitUntil("the job to complete once the processor is started") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 1
            }
            let record = try await stack.api.get("/pipelines/leads/records/\(id)/")
            #expect(record["data"]?["ai_summary"]?.stringValue?.contains("Hooli") == true)
            #expect(try await stack.providerRequests().count == 1)
        }
    }

    @Test("a field added after jobs ran is in the next prompt: the processor's field cache follows the pipeline")
    func addedFieldReachesThePrompt() async throws {
        try await TestStack.with { stack in
            try await Self.makeLeads(stack, aiConfig: Self.summaryConfig)
            let created = try await stack.api.post("/pipelines/leads/records/", Self.jane)
            let id = try #require(created["id"]?.integerValue)
            try await waitUntil("the first job to complete") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 1
            }
            let added = try await stack.api.post("/pipelines/leads/fields/", ["name": "Region", "slug": "region", "field_type": "text"])
            #expect(added.status == 201)
            let patched = try await stack.api.patch("/pipelines/leads/records/\(id)/", ["data": ["region": "Nordics"]])
            #expect(patched["triggered_jobs"]?.arrayValue?.count == 1, "{*} covers the new field, so it triggers")
            try await waitUntil("the second job to complete") {
                try await stack.api.get("/ai-jobs/?status=completed")["count"]?.integerValue == 2
            }
            let requests = try await stack.providerRequests()
            #expect(requests.count == 2)
            #expect(requests.last?.body.contains("Region: Nordics") == true)
            #expect(requests.first?.body.contains("Region") == false)
        }
    }
}
