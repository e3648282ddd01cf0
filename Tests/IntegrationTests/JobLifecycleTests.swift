import Foundation
import OneoWire
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// The job lifecycle against the real process tree and a provider simulator that fails on
/// request: retries (in place and through the queue), permanent failures, cancel, retry, the
/// jobs API, generate on demand, and AI fields that depend on each other.
@Suite("job lifecycle: retries, cancel, the jobs API", .timeLimit(.minutes(3)))
struct JobLifecycleTests {
    /// Pipeline `leads` (name, company) with one AI field `ai_summary` whose prompt is `prompt`.
    static func makePipeline(_ stack: TestStack, prompt: String, extra: [(String, String)] = []) async throws {
        #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        for slug in ["name", "company"] {
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": .string(slug.capitalized), "slug": .string(slug), "field_type": "text"]).status == 201)
        }
        for (slug, text) in [("ai_summary", prompt)] + extra {
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": .string(slug), "slug": .string(slug), "field_type": "ai_generated", "ai_config": ["prompt": .string(text), "model": "gpt-4o-mini"],
            ])
            try #require(field.status == 201, "\(field.body)")
        }
    }

    /// Creates a record and returns the id of the job its AI field got.
    static func createRecord(_ stack: TestStack, name: String, field: String = "ai_summary") async throws -> (record: Int64, job: String) {
        let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(name), "company": "Initech"]])
        try #require(created.status == 201, "\(created.body)")
        let job = try #require(created["triggered_jobs"]?.arrayValue?.first { $0["field"]?.stringValue == field }?["job_id"]?.stringValue)
        return (try #require(created["id"]?.integerValue), job)
    }

    static func waitForStatus(_ stack: TestStack, _ job: String, _ status: String, timeout: Duration = .seconds(30)) async throws -> JSONValue {
        var last: JSONValue = .null
        try await waitUntil("job \(job) to be \(status)", timeout: timeout) {
            last = try await stack.api.get("/ai-jobs/\(job)/").body
            return last["status"]?.stringValue == status
        }
        return last
    }

    static func requests(_ stack: TestStack) async throws -> [JSONValue] {
        try await stack.simulator.get("/sim/requests").body.arrayValue ?? []
    }

    @Test("a 429 with Retry-After is retried in place after that delay, and the job completes on its first attempt")
    func rateLimitedInPlace() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 429 retry-after=1 times=1]")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            let done = try await Self.waitForStatus(stack, job, "completed")
            #expect(done["attempt"]?.integerValue == 1)
            #expect(done["retry_count"]?.integerValue == 0)
            let requests = try await Self.requests(stack)
            #expect(requests.count == 2)
            let gap = (requests.last?["received_ms"]?.integerValue ?? 0) - (requests.first?["received_ms"]?.integerValue ?? 0)
            #expect(gap >= 1_000, "the retry came \(gap) ms after the 429; Retry-After said 1 s")
        }
    }

    @Test("a Retry-After longer than the in-place wait sends the job back to the queue for at least that long, its error on the history")
    func rateLimitedThroughQueue() async throws {
        try await TestStack.with(tunables: ["ONEO_PROCESSORS_PROVIDER_RETRY_WAIT_MAX_MS": "200", "ONEO_QUEUE_RETRY_DELAY_MS": "10"]) { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 429 retry-after=40 times=1]")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            var pending: JSONValue = .null
            try await waitUntil("job \(job) to be queued again") {
                pending = try await stack.api.get("/ai-jobs/\(job)/").body
                return pending["retry_count"]?.integerValue == 1
            }
            #expect(pending["status"] == "pending")
            #expect(pending["error_code"] == "provider_http_429")
            let attempts = try #require(pending["attempts"]?.arrayValue)
            #expect(attempts.first?["outcome"] == "retried")
            #expect(attempts.first?["error_code"] == "provider_http_429")
            // Queued for no sooner than the provider asked (40 s), though our own backoff is 10 ms.
            let waits = try await stack.count("SELECT extract(epoch FROM run_at - updated_at)::bigint FROM ai_jobs WHERE id = \(Int64(job)!)")
            #expect(waits >= 39)
            #expect(try await Self.requests(stack).count == 1)
            // queue_pending runs it now, and this time the provider answers.
            let nudged = try await stack.api.post("/ai-jobs/queue_pending/", [:])
            #expect(nudged.status == 200)
            #expect(nudged["queued"]?.integerValue == 1)
            let done = try await Self.waitForStatus(stack, job, "completed")
            #expect(done["attempt"]?.integerValue == 2)
        }
    }

    @Test("an attempt past its deadline is stopped and queued again (attempt_deadline); the next attempt completes")
    func attemptDeadline() async throws {
        let tunables = [
            "ONEO_QUEUE_ATTEMPT_DEADLINE_MS": "2500", "ONEO_PROCESSORS_PROVIDER_TIMEOUT_MS": "1000",
            "ONEO_PROCESSORS_PROVIDER_RETRIES": "5", "ONEO_QUEUE_RETRY_DELAY_MS": "10",
        ]
        try await TestStack.with(tunables: tunables) { stack in
            // Each refusal asks for 2 s, waited in place: the first attempt outlives its deadline.
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 503 retry-after=2 times=2]")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            let done = try await Self.waitForStatus(stack, job, "completed")
            #expect(done["attempt"]?.integerValue == 2)
            let first = try #require(done["attempts"]?.arrayValue?.first)
            #expect(first["error_code"] == "attempt_deadline")
            #expect(first["outcome"] == "retried")
            // The stopped attempt's call may have been billed: it is charged its reservation (a
            // field under the default budget reserves), on a usage row that says so.
            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE metered") == 1)
            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE NOT metered AND attempt = 1 AND cost_micros > 0 AND tokens_used = 0") == 1)
        }
    }

    @Test("maintenance queues a job that failed on transient errors once more, on its schedule")
    func maintenanceRetriesTransientFailures() async throws {
        let tunables = ["ONEO_MAINTENANCE_INTERVAL_MS": "300", "ONEO_QUEUE_RETRY_DELAY_MS": "10", "ONEO_PROCESSORS_PROVIDER_RETRIES": "0"]
        try await TestStack.with(tunables: tunables) { stack in
            // Four attempts fail (the job ends failed), the fifth call is answered.
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 502 times=4]")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            let done = try await Self.waitForStatus(stack, job, "completed")
            #expect(done["attempt"]?.integerValue == 5)
            #expect(done["attempts"]?.arrayValue?.map { $0["outcome"]?.stringValue ?? "" } == ["retried", "retried", "retried", "failed", "completed"])
            #expect(try await stack.count("SELECT requeued_count::bigint FROM ai_jobs WHERE id = \(Int64(job)!)") == 1)
        }
    }

    @Test("oneo-ai jobs list, show, cancel, retry and cleanup work on the instance's database")
    func jobsCommands() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 401 times=1]")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            _ = try await Self.waitForStatus(stack, job, "failed")
            let table = try await stack.cli(["jobs", "list", "--status", "failed"])
            #expect(table.contains("provider_http_401") && table.contains(stack.tenant))
            let json = try await stack.cli(["jobs", "show", job, "--json"])
            let shown = try JSONValue.parse(Array(json.split(separator: "\n").last(where: { $0.hasPrefix("{") }).map { Array($0.utf8) } ?? []))
            #expect(shown["status"] == "failed")
            #expect(shown["attempts"]?.arrayValue?.first?["error_code"] == "provider_http_401")
            let dry = try await stack.cli(["jobs", "retry", "--status", "failed", "--dry-run"])
            #expect(dry.contains("1 job(s) match"))
            let retried = try await stack.cli(["jobs", "retry", "--status", "failed", "--since", "2000-01-01"])
            #expect(retried.contains("1 of 1 matching job(s) queued again"))
            _ = try await Self.waitForStatus(stack, job, "completed")
            // A second record's job, held pending, is cancelled from the CLI.
            try await stack.cli(["tenant", "stop", stack.tenant])
            let (_, pending) = try await Self.createRecord(stack, name: "Bob")
            let cancelled = try await stack.cli(["jobs", "cancel", "--tenant", stack.tenant, pending])
            #expect(cancelled.contains("cancelled job \(pending) (was pending)"))
            #expect(try await stack.api.get("/ai-jobs/\(pending)/")["status"] == "cancelled")
            // Cleanup keeps what is young, deletes what is old, keeps usage rows.
            #expect(try await stack.cli(["jobs", "cleanup", "--older-than", "30d"]).contains("deleted 0"))
            try await stack.withDatabase { client, logger in
                _ = try await client.query("UPDATE ai_jobs SET completed_at = now() - interval '31 days'", logger: logger)
            }
            #expect(try await stack.cli(["jobs", "cleanup", "--older-than", "30d"]).contains("deleted 2"))
            #expect(try await stack.count("SELECT count(*) FROM ai_usage") == 1)
            await #expect(throws: (any Error).self) { try await stack.cli(["jobs", "cleanup", "--older-than", "soon"]) }
        }
    }

    @Test("a 500 storm ends in failed after the last retry (four attempts), with the real error kept on every attempt")
    func serverErrorStorm() async throws {
        let tunables = ["ONEO_QUEUE_RETRY_DELAY_MS": "20", "ONEO_PROCESSORS_PROVIDER_RETRIES": "1"]
        try await TestStack.with(tunables: tunables) { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 500]")
            let (record, job) = try await Self.createRecord(stack, name: "Ada")
            let failed = try await Self.waitForStatus(stack, job, "failed")
            #expect(failed["attempt"]?.integerValue == 4)
            #expect(failed["max_attempts"]?.integerValue == 4)
            #expect(failed["retry_count"]?.integerValue == 3)
            #expect(failed["error_code"] == "provider_http_500")
            #expect(failed["error_message"]?.stringValue?.contains("simulated") == true)
            let attempts = try #require(failed["attempts"]?.arrayValue)
            #expect(attempts.map { $0["outcome"]?.stringValue ?? "" } == ["retried", "retried", "retried", "failed"])
            #expect(attempts.allSatisfy { $0["error_code"] == "provider_http_500" && $0["provider_retries"]?.integerValue == 1 })
            // Two calls per attempt (one retried in place), nothing after the last.
            #expect(try await Self.requests(stack).count == 8)
            // The record was never written; no usage was recorded.
            #expect(try await stack.api.get("/pipelines/leads/records/\(record)/")["data"]?["ai_summary"] == nil)
            #expect(try await stack.count("SELECT count(*) FROM ai_usage") == 0)
            // The list finds it by status and error code.
            let listed = try await stack.api.get("/ai-jobs/?status=failed&error_code=provider_http_500")
            #expect(listed["count"]?.integerValue == 1)
        }
    }

    @Test("permanent errors (401, insufficient_quota) fail at once, with one provider call")
    func permanentErrors() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 401]", extra: [("ai_quota", "Quota {company} [sim-fault: quota]")])
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada", "company": "Initech"]])
            let jobs = try #require(created["triggered_jobs"]?.arrayValue)
            for (field, code) in [("ai_summary", "provider_http_401"), ("ai_quota", "insufficient_quota")] {
                let id = try #require(jobs.first { $0["field"]?.stringValue == field }?["job_id"]?.stringValue)
                let failed = try await Self.waitForStatus(stack, id, "failed")
                #expect(failed["error_code"]?.stringValue == code)
                #expect(failed["attempt"]?.integerValue == 1)
                #expect(failed["retry_count"]?.integerValue == 0)
            }
            #expect(try await Self.requests(stack).count == 2)
        }
    }

    @Test("retry of a failed job runs it again; retry of a completed one is 409; bulk_retry by filter answers how many")
    func retryAndBulkRetry() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: 400 times=1]")
            let first = try await Self.createRecord(stack, name: "Ada")
            _ = try await Self.waitForStatus(stack, first.job, "failed")
            let retried = try await stack.api.post("/ai-jobs/\(first.job)/retry/", [:])
            #expect(retried.status == 200, "\(retried.body)")
            #expect(retried["status"] == "pending")
            let done = try await Self.waitForStatus(stack, first.job, "completed")
            #expect(done["attempt"]?.integerValue == 2)
            #expect(done["attempts"]?.arrayValue?.map { $0["outcome"]?.stringValue ?? "" } == ["failed", "completed"])
            let again = try await stack.api.post("/ai-jobs/\(first.job)/retry/", [:])
            #expect(again.status == 409)
            #expect(again["code"] == "conflict")

            // Three more records fail once each; one filter queues all three again.
            var jobs: [String] = []
            for name in ["Bob", "Cy", "Di"] { jobs.append(try await Self.createRecord(stack, name: name).job) }
            for job in jobs { _ = try await Self.waitForStatus(stack, job, "failed") }
            let bulk = try await stack.api.post("/ai-jobs/bulk_retry/", ["filter": ["status": "failed", "field_name": "ai_summary"]])
            #expect(bulk.status == 200, "\(bulk.body)")
            #expect(bulk["queued"]?.integerValue == 3)
            #expect(bulk["matched"]?.integerValue == 3)
            for job in jobs { _ = try await Self.waitForStatus(stack, job, "completed") }
            // Bad input: neither ids nor filter, an unknown status.
            #expect(try await stack.api.post("/ai-jobs/bulk_retry/", [:]).status == 422)
            #expect(try await stack.api.post("/ai-jobs/bulk_retry/", ["filter": ["status": "completed"]]).status == 422)
            #expect(try await stack.api.post("/ai-jobs/bulk_retry/", ["ids": [.integer(Int64(jobs[0])!)]])["queued"]?.integerValue == 0)
        }
    }

    @Test("cancel during a slow provider call ends the job cancelled and aborts the call; cancel of a finished job is 409")
    func cancelDuringCall() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name} [sim-fault: slow ms=8000]")
            let (record, job) = try await Self.createRecord(stack, name: "Ada")
            _ = try await Self.waitForStatus(stack, job, "processing")
            try await waitUntil("the provider to receive the call") { try await Self.requests(stack).count == 1 }
            let asked = ContinuousClock.now
            let cancelled = try await stack.api.post("/ai-jobs/\(job)/cancel/", [:])
            #expect(cancelled.status == 200, "\(cancelled.body)")
            #expect(cancelled["status"] == "cancelled")
            #expect(cancelled["error_code"] == "cancelled")
            // The processor aborts the call: its log says so within a second.
            try await waitUntil("the processor to abort the call", timeout: .seconds(1), interval: .milliseconds(10)) {
                stack.serve.output.contains("job cancelled; aborting its provider call")
            }
            let aborted = ContinuousClock.now - asked
            print("cancel: call aborted \(aborted) after the request")
            // The processor has nothing in flight again (its heartbeat says so).
            try await waitUntil("the processor to be idle", timeout: .seconds(5)) {
                try await stack.api.get("/ai-jobs/worker_health/")["processor"]?["jobs_in_flight"]?.integerValue == 0
            }
            #expect(try await stack.api.get("/ai-jobs/\(job)/")["status"] == "cancelled")
            #expect(try await stack.api.get("/pipelines/leads/records/\(record)/")["data"]?["ai_summary"] == nil)
            let again = try await stack.api.post("/ai-jobs/\(job)/cancel/", [:])
            #expect(again.status == 409)
            #expect(try await stack.api.post("/ai-jobs/999999/cancel/", [:]).status == 404)
        }
    }

    @Test("a pending job is cancelled at once and never reaches the provider")
    func cancelPending() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name}")
            let (_, job) = try await Self.createRecord(stack, name: "Ada")
            let cancelled = try await stack.api.post("/ai-jobs/\(job)/cancel/", [:])
            #expect(cancelled.status == 200)
            #expect(cancelled["status"] == "cancelled")
            #expect(cancelled["attempts"]?.arrayValue?.isEmpty == true)
            try await stack.cli(["tenant", "start", stack.tenant])
            let second = try await Self.createRecord(stack, name: "Bob")
            _ = try await Self.waitForStatus(stack, second.job, "completed")
            #expect(try await stack.api.get("/ai-jobs/\(job)/")["status"] == "cancelled")
            #expect(try await Self.requests(stack).count == 1)
        }
    }

    @Test("an AI field that names another runs after it, on its fresh value")
    func dependentFieldRunsSecond() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name}", extra: [("ai_pitch", "Write a pitch from {ai_summary}")])
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada Lovelace", "company": "Initech"]])
            let jobs = try #require(created["triggered_jobs"]?.arrayValue)
            #expect(Set(jobs.compactMap { $0["field"]?.stringValue }) == ["ai_summary", "ai_pitch"])
            let pitchID = try #require(jobs.first { $0["field"] == "ai_pitch" }?["job_id"]?.stringValue)
            let summaryID = try #require(jobs.first { $0["field"] == "ai_summary" }?["job_id"]?.stringValue)
            let pitch = try await Self.waitForStatus(stack, pitchID, "completed")
            let summary = try await Self.waitForStatus(stack, summaryID, "completed")
            #expect(pitch["depends_on"]?.arrayValue == ["ai_summary"])
            let order = try await stack.count(
                "SELECT (p.started_at >= s.completed_at)::int::bigint FROM ai_jobs p, ai_jobs s WHERE p.id = \(Int64(pitchID)!) AND s.id = \(Int64(summaryID)!)"
            )
            #expect(order == 1, "the pitch started before the summary was written")
            // The pitch's prompt carried the summary's value.
            let value = try #require(summary["output_data"]?["content"]?.stringValue)
            let raw = try await stack.simulator.get("/sim/requests").body
            let bodies = try await stack.providerRequests().map(\.body)
            #expect(bodies.count == 2, "\(raw)")
            #expect(bodies.last?.contains(String(value.prefix(20))) == true)
        }
    }

    @Test("generate queues a field now: with wait_ms it answers the finished job; bad input 422, read-only 403, unknown record 404")
    func generateOnDemand() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name}")
            let (record, first) = try await Self.createRecord(stack, name: "Ada")
            _ = try await Self.waitForStatus(stack, first, "completed")
            let done = try await stack.api.post("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary", "wait_ms": 10_000])
            #expect(done.status == 200, "\(done.body)")
            #expect(done["status"] == "completed")
            let value = try #require(done["output_data"]?["content"]?.stringValue)
            #expect(try await stack.api.get("/pipelines/leads/records/\(record)/")["data"]?["ai_summary"]?.stringValue == value)
            #expect(done["id"]?.integerValue != Int64(first))
            let queued = try await stack.api.post("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary"])
            #expect(queued.status == 202 || queued.status == 200)
            #expect(try await stack.api.post("/pipelines/leads/records/\(record)/generate/", ["field": "name"]).status == 422)
            #expect(try await stack.api.post("/pipelines/leads/records/\(record)/generate/", ["field": "nope"]).status == 422)
            #expect(try await stack.api.post("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary", "wait_ms": 999_999]).status == 422)
            #expect(try await stack.api.post("/pipelines/leads/records/987654/generate/", ["field": "ai_summary"]).status == 404)
            let output = try await stack.cli(["token", "create", "--tenant", stack.tenant, "--permissions", "read", "--name", "reader"])
            let token = try #require(output.split(separator: "\n").last.map(String.init))
            let reader = JSONClient(baseURL: stack.local.apiBase + "/api/v1", token: token)
            #expect(try await reader.post("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary"]).status == 403)
            #expect(try await reader.post("/ai-jobs/\(first)/retry/", [:]).status == 403)
            #expect(try await reader.post("/ai-jobs/\(first)/cancel/", [:]).status == 403)
            #expect(try await reader.get("/ai-jobs/\(first)/").status == 200)
        }
    }

    @Test("the jobs list filters and orders; another tenant's job is 404 to every endpoint; worker_health and diagnostics are the caller's own")
    func jobsAPI() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name}")
            var jobs: [String] = []
            for name in ["Ada", "Bob", "Cy"] { jobs.append(try await Self.createRecord(stack, name: name).job) }
            for job in jobs { _ = try await Self.waitForStatus(stack, job, "completed") }
            let ascending = try await stack.api.get("/ai-jobs/?ordering=id")
            #expect(ascending["results"]?.arrayValue?.compactMap { $0["id"]?.integerValue }.map(String.init) == jobs)
            #expect(try await stack.api.get("/ai-jobs/?ordering=-id")["results"]?.arrayValue?.first?["id"]?.integerValue == Int64(jobs[2]))
            #expect(try await stack.api.get("/ai-jobs/?ordering=sideways").status == 422)
            #expect(try await stack.api.get("/ai-jobs/?created_after=2000-01-01&created_before=2999-01-01")["count"]?.integerValue == 3)
            #expect(try await stack.api.get("/ai-jobs/?created_after=2999-01-01")["count"]?.integerValue == 0)
            #expect(try await stack.api.get("/ai-jobs/?created_after=yesterday").status == 422)
            #expect(try await stack.api.get("/ai-jobs/?job_type=field_generation&field_name=ai_summary")["count"]?.integerValue == 3)

            // The processor's next heartbeat carries the three jobs it finished.
            var health = try await stack.api.get("/ai-jobs/worker_health/")
            try await waitUntil("worker_health to count the finished jobs", timeout: .seconds(5)) {
                health = try await stack.api.get("/ai-jobs/worker_health/")
                return (health["processor"]?["jobs_completed"]?.integerValue ?? 0) >= 3
            }
            #expect(health.status == 200)
            #expect(health["status"] == "healthy", "\(health.body)")
            #expect(health["processor"]?["state"] == "running")
            #expect((health["processor"]?["jobs_completed"]?.integerValue ?? 0) >= 3)
            let diagnostics = try await stack.api.get("/ai-jobs/diagnostics/?window_minutes=10")
            #expect(diagnostics["queue"]?["by_status"]?["completed"]?.integerValue == 3)
            #expect(diagnostics["failures"]?["completed_jobs"]?.integerValue == 3)
            #expect(diagnostics["database"]?["ok"] == true)
            #expect(diagnostics["redis"]?["ok"] == true)
            #expect(diagnostics["provider"]?["last_success_at"] != nil)
            // The processor's newest call, through its heartbeat: reachable, with its latency.
            #expect(health["processor"]?["provider_call"]?["reachable"] == true)
            #expect((health["processor"]?["provider_call"]?["latency_ms"]?.integerValue ?? -1) >= 0)

            let other = try await stack.addTenant("globex", providerKey: "test-provider-key-2")
            for path in ["/ai-jobs/\(jobs[0])/"] { #expect(try await other.get(path).status == 404) }
            #expect(try await other.post("/ai-jobs/\(jobs[0])/retry/", [:]).status == 404)
            #expect(try await other.post("/ai-jobs/\(jobs[0])/cancel/", [:]).status == 404)
            #expect(try await other.post("/ai-jobs/bulk_retry/", ["ids": [.integer(Int64(jobs[0])!)]])["queued"]?.integerValue == 0)
            #expect(try await other.get("/ai-jobs/")["count"]?.integerValue == 0)
            let otherHealth = try await other.get("/ai-jobs/worker_health/")
            #expect(otherHealth["processor"]?["jobs_completed"]?.integerValue ?? 0 == 0)
            #expect(try await other.get("/ai-jobs/diagnostics/")["queue"]?["by_status"]?["completed"]?.integerValue == 0)
        }
    }

    @Test("the list shows a large output as truncated with its size; the job itself has it whole")
    func listTruncatesLargeValues() async throws {
        try await TestStack.with { stack in
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Summary", "slug": "ai_summary", "field_type": "ai_generated",
                "ai_config": ["prompt": "Summarize: {*}", "max_field_chars": 8_000, "max_tokens": 4_000],
            ])
            try #require(field.status == 201, "\(field.body)")
            let created = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": .string(String(repeating: "Ada ", count: 1_500))]])
            let job = try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
            let whole = try await Self.waitForStatus(stack, job, "completed")
            let content = try #require(whole["output_data"]?["content"]?.stringValue)
            #expect(content.utf8.count > 4_096)
            let listed = try await stack.api.get("/ai-jobs/")
            let row = try #require(listed["results"]?.arrayValue?.first)
            #expect(row["output_data"]?["truncated"] == true)
            #expect((row["output_data"]?["bytes"]?.integerValue ?? 0) > 4_096)
        }
    }

    @Test("permissions: read lists and reads, create retries, cancels, queues and generates; another tenant touches nothing")
    func permissions() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            try await Self.makePipeline(stack, prompt: "Summarize {name}")
            let (record, job) = try await Self.createRecord(stack, name: "Ada")
            func client(_ permissions: String) async throws -> JSONClient {
                let output = try await stack.cli(["token", "create", "--tenant", stack.tenant, "--permissions", permissions, "--name", permissions])
                return JSONClient(baseURL: stack.local.apiBase + "/api/v1", token: try #require(output.split(separator: "\n").last.map(String.init)))
            }
            let reader = try await client("read")
            let writer = try await client("create")
            for path in ["/ai-jobs/", "/ai-jobs/\(job)/", "/ai-jobs/worker_health/", "/ai-jobs/diagnostics/"] {
                #expect(try await reader.get(path).status == 200, "\(path)")
                #expect(try await writer.get(path).status == 403, "\(path)")
            }
            let actions: [(String, JSONValue)] = [
                ("/ai-jobs/\(job)/retry/", [:]), ("/ai-jobs/\(job)/cancel/", [:]), ("/ai-jobs/bulk_retry/", ["ids": [.integer(Int64(job)!)]]),
                ("/ai-jobs/queue_pending/", [:]), ("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary"]),
            ]
            for (path, body) in actions { #expect(try await reader.post(path, body).status == 403, "\(path)") }
            // Another tenant: 404 for the job, nothing queued or cancelled of ours.
            let other = try await stack.addTenant("globex", providerKey: "test-provider-key-2")
            #expect(try await other.post("/ai-jobs/\(job)/cancel/", [:]).status == 404)
            #expect(try await other.post("/ai-jobs/queue_pending/", [:])["matched"]?.integerValue == 0)
            #expect(try await other.post("/pipelines/leads/records/\(record)/generate/", ["field": "ai_summary"]).status == 404)
            #expect(try await stack.api.get("/ai-jobs/\(job)/")["status"] == "pending")
            // The writer's own actions work.
            #expect(try await writer.post("/ai-jobs/queue_pending/", [:]).status == 200)
            #expect(try await writer.post("/ai-jobs/\(job)/cancel/", [:])["status"] == "cancelled")
        }
    }
}
