import API
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoTesting
import PostgresNIO
import Testing

/// The queue manager's statements against a real PostgreSQL, without the process tree: claims
/// across tenants, the commit fence, releases and give-backs.
@Suite("job queue: claim, commit and release across tenants")
struct JobQueueTests {
    /// A fresh, migrated database with `tenants` tenants, each with one AI field and `records`
    /// records (one pending job each). Returns the tenant ids in order.
    static func withQueue(tenants: Int, records: Int, _ body: @Sendable (PostgresClient, [TenantID], Logger) async throws -> Void) async throws {
        try await TestStack.freshDatabase("oneo_queue") { _, client, logger in
            var ids: [TenantID] = []
            for index in 0..<tenants {
                let slug = "t\(index)"
                var tenant: TenantID?
                for try await id in try await client.query("INSERT INTO tenants (slug, name) VALUES (\(slug), \(slug)) RETURNING id", logger: logger).decode(TenantID.self) {
                    tenant = id
                }
                let tenantID = try #require(tenant)
                ids.append(tenantID)
                var pipeline: PipelineID?
                for try await id in try await client.query("INSERT INTO pipelines (tenant_id, name, slug) VALUES (\(tenantID), 'Leads', 'leads') RETURNING id", logger: logger).decode(PipelineID.self) {
                    pipeline = id
                }
                let pipelineID = try #require(pipeline)
                let config = AIFieldConfig(prompt: "Summarize {name}").jsonValue
                try await client.query(
                    """
                    WITH ids AS (SELECT nextval('fields_id_seq') AS field_id, nextval('field_versions_id_seq') AS version_id),
                    plain AS (
                        INSERT INTO fields (tenant_id, pipeline_id, name, slug, field_type, ai_config, position)
                        VALUES (\(tenantID), \(pipelineID), 'Name', 'name', 'text', NULL, 0)),
                    ai AS (
                        INSERT INTO fields (id, tenant_id, pipeline_id, name, slug, field_type, ai_config, position, version_id)
                        SELECT field_id, \(tenantID), \(pipelineID), 'Summary', 'summary', 'ai_generated', \(config), 1, version_id FROM ids)
                    INSERT INTO field_versions (id, tenant_id, field_id, ai_config) SELECT version_id, \(tenantID), field_id, \(config) FROM ids
                    """,
                    logger: logger
                )
                let writer = RecordWriter(tenant: tenantID, defaultModel: "gpt-4o-mini", user: "test")
                for number in 0..<records {
                    _ = try await client.withTransaction(logger: logger) { connection in
                        try await writer.create(pipeline: pipelineID, data: ["name": .string("Record \(number)")], on: connection, logger: logger)
                    }
                }
            }
            try await body(client, ids, logger)
        }
    }

    static func statuses(_ client: PostgresClient, _ logger: Logger) async throws -> [String: Int] {
        var counts: [String: Int] = [:]
        for try await (status, count) in try await client.query("SELECT status, count(*)::int FROM ai_jobs GROUP BY status", logger: logger).decode((String, Int).self) {
            counts[status] = count
        }
        return counts
    }

    @Test("one claim takes each listed tenant's room, oldest first, and nothing of tenants not listed")
    func claimAcrossTenants() async throws {
        try await Self.withQueue(tenants: 3, records: 5) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 2, tenants[1]: 10], logger: logger)
            let byTenant = Dictionary(grouping: claimed, by: \.tenant)
            #expect(byTenant[tenants[0]]?.count == 2)
            #expect(byTenant[tenants[1]]?.count == 5)
            #expect(byTenant[tenants[2]] == nil)
            let first = try #require(byTenant[tenants[0]]).map(\.id.rawValue).sorted()
            let oldest = try await Self.ids(client, logger, "SELECT id FROM ai_jobs WHERE tenant_id = \(tenants[0].rawValue) ORDER BY id LIMIT 2")
            #expect(first == oldest)
            for job in claimed {
                #expect(job.attempt == 1)
                #expect(job.recordData?["name"] != nil)
                #expect(job.fieldName == "summary")
                #expect(try job.config.get().prompt == "Summarize {name}")
            }
            #expect(try await Self.statuses(client, logger) == ["processing": 7, "pending": 8])
        }
    }

    static func ids(_ client: PostgresClient, _ logger: Logger, _ sql: String) async throws -> [Int64] {
        var ids: [Int64] = []
        for try await id in try await client.query(PostgresQuery(unsafeSQL: sql), logger: logger).decode(Int64.self) { ids.append(id) }
        return ids
    }

    @Test("a commit writes only attempts still held by this worker, for their own tenant")
    func commitIsFenced() async throws {
        try await Self.withQueue(tenants: 2, records: 2) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 2, tenants[1]: 2], logger: logger)
            #expect(claimed.count == 4)
            func finished(_ job: ClaimedJob, tenant: TenantID? = nil, attempt: Int? = nil) -> JobQueue.Finished {
                let reference = JobQueue.Attempt(tenant: tenant ?? job.tenant, job: job.id, attempt: attempt ?? job.attempt)
                let completion = JobCompletion(job: job.id, attempt: job.attempt, value: .string("done \(job.id)"), audit: [:], promptTokens: 10, completionTokens: 5, milliseconds: 3)
                return JobQueue.Finished(attempt: reference, job: job, completion: completion, cost: Microdollars(42))
            }
            let a = claimed.filter { $0.tenant == tenants[0] }
            let b = claimed.filter { $0.tenant == tenants[1] }
            let other = JobQueue(database: client, worker: "someone-else", leaseSeconds: 60)
            // Another worker's commit, a commit naming the wrong tenant, one naming a stale
            // attempt: none writes.
            #expect(try await other.complete([finished(a[0])], logger: logger).isEmpty)
            #expect(try await queue.complete([finished(a[0], tenant: tenants[1])], logger: logger).isEmpty)
            #expect(try await queue.complete([finished(a[1], attempt: 7)], logger: logger).isEmpty)
            // The real ones, of both tenants, in one batch.
            let committed = try await queue.complete([finished(a[0]), finished(b[0]), finished(b[1])], logger: logger)
            #expect(committed == Set([a[0].id, b[0].id, b[1].id]))
            #expect(try await Self.statuses(client, logger) == ["completed": 3, "processing": 1])
            let usage = try await Self.ids(client, logger, "SELECT count(*)::bigint FROM ai_usage")
            #expect(usage == [3])
            let written = try await Self.ids(client, logger, "SELECT count(*)::bigint FROM records WHERE data->>'summary' LIKE 'done %'")
            #expect(written == [3])
            let wrongTenant = try await Self.ids(client, logger, "SELECT count(*)::bigint FROM ai_usage u JOIN ai_jobs j ON j.id = u.job_id WHERE u.tenant_id <> j.tenant_id")
            #expect(wrongTenant == [0])
        }
    }

    @Test("released attempts go back with a retry counted; given-back attempts go back without spending one")
    func releaseAndGiveBack() async throws {
        try await Self.withQueue(tenants: 1, records: 3) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 3], logger: logger)
            #expect(claimed.count == 3)
            #expect(try await queue.release(.attempts([claimed[0].attemptReference]), logger: logger) == 1)
            #expect(try await queue.giveBack([claimed[1].attemptReference], logger: logger) == 1)
            // A second release of the same attempt matches nothing.
            #expect(try await queue.release(.attempts([claimed[0].attemptReference]), logger: logger) == 0)
            // attempt × 100 + max_attempts × 10 + retries: released 1·4·1; given back 1·5·0
            // (four attempts by default: three retries).
            let rows = try await Self.ids(client, logger, "SELECT attempt * 100 + max_attempts * 10 + retry_count FROM ai_jobs WHERE status = 'pending' ORDER BY id")
            #expect(rows == [141, 150])
            // The released attempt is on its job's history; the given-back one, never started, is not.
            let history = try await Self.ids(client, logger, "SELECT job_id FROM ai_job_attempts WHERE outcome = 'retried' AND error_code = 'processor_stopped'")
            #expect(history == [claimed[0].id.rawValue])
            // The worker's remaining attempt is released when the worker is retired.
            #expect(try await queue.release(.worker("qmgr-test"), logger: logger) == 1)
            #expect(try await Self.statuses(client, logger) == ["pending": 3])
        }
    }

    @Test("expired leases are rescued; extended ones are not")
    func rescueExpired() async throws {
        try await Self.withQueue(tenants: 1, records: 2) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 2], logger: logger)
            #expect(claimed.count == 2)
            try await client.query("UPDATE ai_jobs SET lease_until = now() - interval '1 second'", logger: logger)
            try await queue.extendLeases([claimed[0].id], logger: logger)
            #expect(try await queue.release(.expired, logger: logger) == 1)
            let pending = try await Self.ids(client, logger, "SELECT id FROM ai_jobs WHERE status = 'pending'")
            #expect(pending == [claimed[1].id.rawValue])
            #expect(try await queue.tenantsWithDueWork(limit: 10, logger: logger) == [tenants[0]])
        }
    }

    @Test("a rescuer racing completions never overwrites one: each job ends completed with one usage row, or back in the queue with none")
    func rescueRacesCompletion() async throws {
        try await Self.withQueue(tenants: 1, records: 40) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 40], logger: logger)
            #expect(claimed.count == 40)
            try await client.query("UPDATE ai_jobs SET lease_until = now() - interval '1 second'", logger: logger)
            let finished = claimed.map { job in
                JobQueue.Finished(
                    attempt: job.attemptReference, job: job,
                    completion: JobCompletion(job: job.id, attempt: job.attempt, value: "done", audit: [:], promptTokens: 1, completionTokens: 1, milliseconds: 1),
                    cost: Microdollars(1)
                )
            }
            // Commits in small batches while the rescuer runs: whoever takes a row first wins it.
            async let rescued = queue.release(.expired, logger: logger)
            var committed = 0
            for start in stride(from: 0, to: finished.count, by: 5) {
                committed += try await queue.complete(Array(finished[start..<start + 5]), logger: logger).count
            }
            let released = try await rescued
            #expect(committed + released == 40)
            #expect(try await Self.ids(client, logger, "SELECT count(*)::bigint FROM ai_jobs WHERE status = 'completed'") == [Int64(committed)])
            #expect(try await Self.ids(client, logger, "SELECT count(*)::bigint FROM ai_usage") == [Int64(committed)])
            // No released job was written, and no completed one was queued again.
            let crossed = try await Self.ids(client, logger, """
                SELECT count(*)::bigint FROM ai_jobs j WHERE (j.status = 'pending' AND EXISTS (SELECT 1 FROM ai_usage u WHERE u.job_id = j.id))
                   OR (j.status = 'completed' AND EXISTS (SELECT 1 FROM ai_job_attempts a WHERE a.job_id = j.id))
                """)
            #expect(crossed == [0])
        }
    }

    @Test("maintenance deletes finished jobs past their age (usage rows stay) and queues transient failures again once")
    func maintenance() async throws {
        try await Self.withQueue(tenants: 1, records: 3) { client, tenants, logger in
            let queue = JobQueue(database: client, worker: "qmgr-test", leaseSeconds: 60)
            let claimed = try await queue.claim(rooms: [tenants[0]: 3], logger: logger)
            #expect(claimed.count == 3)
            let done = claimed[0]
            _ = try await queue.complete([JobQueue.Finished(
                attempt: done.attemptReference, job: done,
                completion: JobCompletion(job: done.id, attempt: done.attempt, value: "ok", audit: [:], promptTokens: 1, completionTokens: 1, milliseconds: 1),
                cost: Microdollars(1)
            )], logger: logger)
            // One transient failure on its last attempt, one permanent.
            try await client.query("UPDATE ai_jobs SET max_attempts = 1 WHERE id = \(claimed[1].id)", logger: logger)
            #expect(try await queue.fail(claimed[1].attemptReference, code: "provider_http_503", message: "busy", retryAfter: .zero, logger: logger))
            #expect(try await queue.fail(claimed[2].attemptReference, code: "provider_http_401", message: "bad key", retryAfter: nil, logger: logger))
            #expect(try await Self.statuses(client, logger) == ["completed": 1, "failed": 2])

            let maintenance = JobMaintenance(database: client)
            var filter = JobMaintenance.Filter(statuses: [.failed])
            filter.onlyRetryable = true
            filter.requeuedFewerThan = 1
            #expect(try await maintenance.count(matching: filter, logger: logger) == 1)
            #expect(try await maintenance.requeue(matching: filter, attempts: 4, logger: logger) == 1)
            // Once: a second pass finds it already queued again (and it has not failed again).
            #expect(try await maintenance.requeue(matching: filter, attempts: 4, logger: logger) == 0)
            let requeued = try await Self.ids(client, logger, "SELECT id FROM ai_jobs WHERE status = 'pending'")
            #expect(requeued == [claimed[1].id.rawValue])

            #expect(try await maintenance.cleanup(olderThanDays: 30, logger: logger) == 0)
            try await client.query("UPDATE ai_jobs SET completed_at = now() - interval '40 days' WHERE status IN ('completed', 'failed')", logger: logger)
            #expect(try await maintenance.cleanup(olderThanDays: 30, logger: logger) == 2)
            #expect(try await Self.ids(client, logger, "SELECT count(*)::bigint FROM ai_usage") == [1])
            #expect(try await Self.statuses(client, logger) == ["pending": 1])
        }
    }
}
