import Foundation
import OneoTesting
import OneoWire
import PostgresNIO
import StackControl
import Testing

/// Bulk generation: an estimate first (records matched, worst-case cost, nothing queued, no call),
/// then the run with `confirm`, its progress, and the filters.
@Suite("bulk generation", .serialized, .timeLimit(.minutes(3)))
struct BulkGenerateTests {
    @Test("without confirm: the count and the worst case, nothing queued; with confirm: the jobs run and the progress shows them; empty and where filter")
    func estimateThenRun() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            for slug in ["name", "company"] {
                #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": .string(slug), "slug": .string(slug), "field_type": "text"]).status == 201)
            }
            // Records first, the AI field after: nothing is queued by their writes.
            for (name, company) in [("Ada", "Initech"), ("Grace", "Initech"), ("Alan", "Globex"), ("Edsger", "Hooli")] {
                #expect(try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(name), "company": .string(company)]]).status == 201)
            }
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Pitch", "slug": "pitch", "field_type": "ai_generated",
                "ai_config": ["prompt": "Write a pitch for {name} of {company}.", "model": "gpt-4o-mini", "max_tokens": 100, "auto_regenerate": false],
            ])
            try #require(field.status == 201, "\(field.body)")
            let path = "/pipelines/leads/fields/pitch/generate/"

            let estimate = try await stack.api.post(path, ["records": "all"])
            try #require(estimate.status == 200, "\(estimate.body)")
            #expect(estimate["records"]?.integerValue == 4)
            #expect(estimate["queued"]?.integerValue == 0)
            #expect(estimate["confirmed"] == false)
            // Four prompts of about 90 bytes with the fence's system message, 100 output tokens
            // each at gpt-4o-mini's prices: a strict bound, far above a few micro-dollars.
            let worst = try #require(estimate["worst_case_cost_micros"]?.integerValue)
            #expect(worst >= 4 * 60, "100 output tokens at 0.6 µ$ each, four times")
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs") == 0)
            #expect(try await stack.providerRequests().isEmpty)

            let initech = try await stack.api.post(path, ["records": "all", "where": ["company": "Initech"]])
            #expect(initech["records"]?.integerValue == 2)
            #expect(try await stack.api.post(path, ["where": ["pitch": "x"]]).status == 422, "an AI field is not a filter")
            #expect(try await stack.api.post(path, ["records": "some"]).status == 422)

            let run = try await stack.api.post(path, ["records": "all", "where": ["company": "Initech"], "confirm": true])
            try #require(run.status == 200, "\(run.body)")
            #expect(run["queued"]?.integerValue == 2)
            let since = try #require(run["since"]?.stringValue)
            let progressPath = path + "?since=" + (since.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? since)
            try await waitUntil("the run to complete") {
                try await stack.api.get(progressPath)["completed"]?.integerValue == 2
            }
            let progress = try await stack.api.get(progressPath)
            #expect(progress["total"]?.integerValue == 2)
            #expect(progress["failed"]?.integerValue == 0)

            // The two filled, `empty` matches the other two only.
            let empty = try await stack.api.post(path, ["records": "empty"])
            #expect(empty["records"]?.integerValue == 2)
            #expect((empty["worst_case_cost_micros"]?.integerValue ?? 0) < worst)
        }
    }

    @Test("the CLI: the estimate without --yes queues nothing; with --yes it queues, watches and reports every job ended; bad filters are refused")
    func commandLine() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            for slug in ["name", "employees"] {
                #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": .string(slug), "slug": .string(slug), "field_type": "text"]).status == 201)
            }
            for (name, employees) in [("Ada", 5), ("Grace", 5), ("Alan", 50)] {
                #expect(try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(name), "employees": .integer(Int64(employees))]]).status == 201)
            }
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Pitch", "slug": "pitch", "field_type": "ai_generated",
                "ai_config": ["prompt": "Write a pitch for {name}.", "model": "gpt-4o-mini", "max_tokens": 100, "auto_regenerate": false],
            ])
            try #require(field.status == 201, "\(field.body)")

            let estimate = try await stack.cli(["generate", "--tenant", stack.tenant, "leads", "pitch", "--where", "employees=5"])
            #expect(estimate.contains("2 records match"), "\(estimate)")
            #expect(estimate.contains("nothing queued"))
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs") == 0)

            let run = try await stack.cli(["generate", "--tenant", stack.tenant, "leads", "pitch", "--yes"])
            #expect(run.contains("3 records match"), "\(run)")
            #expect(run.contains("queued 3 jobs"))
            #expect(run.contains("completed 3, failed 0, cancelled 0"), "the command waits for every job: \(run)")
            #expect(run.contains("3/3"), "the progress shows every job ended: \(run)")
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'completed'") == 3)

            let empty = try await stack.cli(["generate", "--tenant", stack.tenant, "leads", "pitch", "--empty"])
            #expect(empty.contains("0 records match"), "\(empty)")
            await #expect(throws: (any Error).self, "an AI field is no filter") {
                try await stack.cli(["generate", "--tenant", stack.tenant, "leads", "pitch", "--where", "pitch=x"])
            }
            await #expect(throws: (any Error).self, "an unknown tenant") {
                try await stack.cli(["generate", "--tenant", "nobody", "leads", "pitch"])
            }
        }
    }
}
