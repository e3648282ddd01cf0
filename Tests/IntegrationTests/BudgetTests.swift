import Foundation
import OneoTesting
import OneoWire
import PostgresNIO
import StackControl
import Testing

/// Budgets are reserved before every call and never exceeded: under concurrency, with
/// processors killed mid-call, and a refused job makes no provider call at all.
@Suite("budgets", .serialized, .timeLimit(.minutes(5)))
struct BudgetTests {
    /// About 2 KB of context: the bound of one call (every byte a token) is a few times its real
    /// cost (the simulator counts four bytes a token), as with a real model.
    static let context = String(repeating: "Context about the account and its history. ", count: 45)

    static func makePipeline(_ stack: TestStack, config: JSONValue) async throws {
        #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
        let field = try await stack.api.post("/pipelines/leads/fields/", ["name": "Pitch", "slug": "pitch", "field_type": "ai_generated", "ai_config": config])
        try #require(field.status == 201, "\(field.body)")
    }

    static func createRecord(_ stack: TestStack, name: String) async throws -> String {
        let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(name)]])
        try #require(created.status == 201, "\(created.body)")
        return try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
    }

    static func requestBodies(_ stack: TestStack) async throws -> [String] {
        try await stack.providerRequests().map(\.body)
    }

    /// The tenant's ledger row for this month: limit, spent, reserved.
    static func tenantPeriod(_ stack: TestStack) async throws -> (limit: Int64, spent: Int64, reserved: Int64) {
        let budgets = try await stack.api.get("/ai-budgets/")
        try #require(budgets.status == 200, "\(budgets.body)")
        let row = try #require(budgets["budgets"]?.arrayValue?.first { $0["scope"] == "tenant" }, "\(budgets.body)")
        return (
            try #require(row["limit_micros"]?.integerValue), try #require(row["spent_micros"]?.integerValue),
            try #require(row["reserved_micros"]?.integerValue)
        )
    }

    @Test("200 jobs at once against a budget that fits a few dozen, a processor killed mid-run: spend within the budget, refused jobs never called, the ledger adds up to the micro-dollar")
    func concurrentJobsNeverOverspend() async throws {
        // The field budget default is off here: the tenant's month is the budget under test.
        let tunables = ["ONEO_BUDGETS_FIELD_LIMIT_CENTS": "0", "ONEO_QUEUE_RETRY_DELAY_MS": "10"]
        try await TestStack.with(processorHeld: true, simulatorLatencyMilliseconds: 1500, tunables: tunables) { stack in
            try await Self.makePipeline(stack, config: ["prompt": .string("Write a pitch for {name}. \(Self.context)"), "model": "gpt-4o", "max_tokens": 60])
            // 20 cents: a call's bound is about 0.6 cents and its real cost about 0.15.
            try await stack.cli(["tenant", "set-budget", stack.tenant, "--monthly-cents", "20"])
            var jobs: [String: String] = [:]
            for index in 0..<200 {
                let name = String(format: "Lead%04d", index)
                jobs[try await Self.createRecord(stack, name: name)] = name
            }
            try await stack.cli(["tenant", "start", stack.tenant])
            // Kill the processor while calls are in flight: a round has finished, and calls of the
            // next hold their reservations (each call takes 1.5 s once reserved: far longer than a
            // finished call waits for its commit, when the row still shows it processing).
            try await waitUntil("some jobs to complete and more to be mid-call", timeout: .seconds(30), interval: .milliseconds(5)) {
                let completed = try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'completed'")
                let midCall = try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'processing' AND reserved_micros > 0")
                return completed >= 3 && midCall >= 4
            }
            let pid = try #require(try await stack.child("processor:\(stack.tenant)")?.pid)
            kill(pid, SIGKILL)
            try await waitUntil("every job to finish", timeout: .seconds(120)) {
                try await stack.count("SELECT count(*) FROM ai_jobs WHERE status IN ('pending', 'processing')") == 0
            }

            // Within the budget, nothing left reserved, and every micro-dollar spent is on a usage row.
            let period = try await Self.tenantPeriod(stack)
            #expect(period.limit == 200_000)
            #expect(period.spent <= period.limit, "spent \(period.spent) of \(period.limit)")
            #expect(period.reserved == 0)
            let usage = try await stack.count("SELECT coalesce(sum(cost_micros), 0)::bigint FROM ai_usage")
            #expect(usage == Int(period.spent), "usage rows \(usage), ledger \(period.spent)")
            let completed = try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'completed'")
            let refused = try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'failed' AND error_code = 'budget_exceeded'")
            #expect(completed + refused == 200, "completed \(completed), refused \(refused)")
            #expect(completed >= 10)
            #expect(refused >= 50)
            // The kill landed mid-call: its attempts were charged their reservations, unmetered.
            #expect(try await stack.count("SELECT count(*) FROM ai_job_attempts WHERE error_code = 'processor_stopped'") >= 1)
            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE NOT metered AND cost_micros > 0") >= 1)

            // A job with no usage row never reached the provider; no job made more calls than
            // it was charged for.
            let bodies = try await Self.requestBodies(stack)
            let charged = try await stack.withDatabase { database, logger in
                var counts: [String: Int] = [:]
                let rows = try await database.query("SELECT job_id::text, count(*)::bigint FROM ai_usage GROUP BY job_id", logger: logger)
                for try await (job, count) in rows.decode((String, Int).self) { counts[job] = count }
                return counts
            }
            var neverCalled = 0
            for (job, name) in jobs {
                let calls = bodies.filter { $0.contains(name) }.count
                #expect(calls <= charged[job, default: 0], "job \(job) (\(name)) made \(calls) calls and was charged \(charged[job, default: 0]) times")
                if charged[job] == nil { neverCalled += 1 }
            }
            #expect(neverCalled >= 50)
            #expect(bodies.count <= charged.values.reduce(0, +))
            let unmetered = try await stack.count("SELECT coalesce(sum(cost_micros), 0)::bigint FROM ai_usage WHERE NOT metered")
            print("budget figures: limit \(period.limit) µ$, spent \(period.spent) µ$ (\(unmetered) of it charged at reservation), reserved \(period.reserved); completed \(completed), refused \(refused), never called \(neverCalled), provider calls \(bodies.count)")
        }
    }

    @Test("a field over its own budget fails budget_exceeded with no call; raised, the job retried completes; the API and tenant show the ledger")
    func fieldBudgetRefusesWithoutCalling() async throws {
        try await TestStack.with { stack in
            // gpt-4o: the bound of one call is about 0.6 cents; the field allows 0.5.
            try await Self.makePipeline(stack, config: [
                "prompt": .string("Write a pitch for {name}. \(Self.context)"), "model": "gpt-4o", "max_tokens": 60, "budget_limit_cents": 0,
            ])
            let job = try await Self.createRecord(stack, name: "Ada")
            var done: JSONValue = .null
            try await waitUntil("the job to fail") {
                done = try await stack.api.get("/ai-jobs/\(job)/").body
                return done["status"] == "failed"
            }
            #expect(done["error_code"] == "budget_exceeded")
            #expect(done["error_message"]?.stringValue?.contains("field's monthly budget") == true, "\(done)")
            #expect(try await Self.requestBodies(stack).isEmpty, "a refused job made a provider call")
            #expect(try await stack.count("SELECT count(*) FROM ai_usage") == 0)

            // The operator raises the field's budget (a new version of its config); the retry
            // runs the field as it is now.
            try await stack.withDatabase { database, logger in
                _ = try await database.query(
                    """
                    WITH next AS (
                        INSERT INTO field_versions (tenant_id, field_id, ai_config)
                        SELECT tenant_id, id, ai_config || '{"budget_limit_cents": 100}' FROM fields WHERE slug = 'pitch'
                        RETURNING id, field_id)
                    UPDATE fields f SET version_id = next.id, ai_config = f.ai_config || '{"budget_limit_cents": 100}'
                    FROM next WHERE f.id = next.field_id
                    """,
                    logger: logger
                )
            }
            #expect(try await stack.api.post("/ai-jobs/\(job)/retry/", [:]).status == 200)
            try await waitUntil("the retried job to complete") {
                try await stack.api.get("/ai-jobs/\(job)/")["status"] == "completed"
            }
            #expect(try await Self.requestBodies(stack).count == 1)

            let budgets = try await stack.api.get("/ai-budgets/")
            let field = try #require(budgets["budgets"]?.arrayValue?.first { $0["scope"] == "field" }, "\(budgets.body)")
            #expect(field["field"] == "pitch")
            #expect(field["limit_micros"]?.integerValue == 1_000_000)
            #expect(field["reserved_micros"]?.integerValue == 0)
            let cost = try await stack.count("SELECT cost_micros FROM ai_jobs")
            #expect(cost > 0)
            #expect(field["spent_micros"]?.integerValue == Int64(cost))
            let shown = try await stack.cli(["tenant", "show", stack.tenant])
            #expect(shown.contains("field pitch"), "\(shown)")
            #expect(shown.contains("reserved $0.000000"), "\(shown)")
        }
    }

    @Test("a tenant over its monthly budget: jobs fail budget_exceeded without calls; raised with set-budget (no restart), a retry completes")
    func tenantBudgetRaisedThenRetried() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, config: ["prompt": "Write a pitch for {name}.", "model": "gpt-4o-mini"])
            try await stack.cli(["tenant", "set-budget", stack.tenant, "--monthly-cents", "0"])
            let job = try await Self.createRecord(stack, name: "Grace")
            try await waitUntil("the job to fail") { try await stack.api.get("/ai-jobs/\(job)/")["status"] == "failed" }
            let failed = try await stack.api.get("/ai-jobs/\(job)/")
            #expect(failed["error_code"] == "budget_exceeded")
            #expect(failed["error_message"]?.stringValue?.contains("tenant's monthly budget") == true)
            #expect(try await Self.requestBodies(stack).isEmpty)
            let pid = try await stack.child("processor:\(stack.tenant)")?.pid
            try await stack.cli(["tenant", "set-budget", stack.tenant, "--monthly-cents", "100"])
            #expect(try await stack.api.post("/ai-jobs/\(job)/retry/", [:]).status == 200)
            try await waitUntil("the retried job to complete") { try await stack.api.get("/ai-jobs/\(job)/")["status"] == "completed" }
            #expect(try await stack.child("processor:\(stack.tenant)")?.pid == pid, "a budget change restarted the processor")
            let period = try await Self.tenantPeriod(stack)
            #expect(period.limit == 1_000_000)
            #expect(period.reserved == 0)
            #expect(period.spent == Int64(try await stack.count("SELECT cost_micros FROM ai_jobs")))
            // An unknown zone is refused with the reason; a real one is taken.
            await #expect(throws: (any Error).self) { try await stack.cli(["tenant", "set-time-zone", stack.tenant, "Mars/Olympus"]) }
            #expect(try await stack.cli(["tenant", "set-time-zone", stack.tenant, "Europe/Oslo"]).contains("Europe/Oslo"))
            #expect(try await stack.api.get("/ai-budgets/")["time_zone"] == "Europe/Oslo")
        }
    }
}
