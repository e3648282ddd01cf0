import API
import Foundation
import OneoWire
import OneoStore
import OneoCore
import OneoTesting
import StackControl
import PostgresNIO
import Testing

/// Jobs are queued in the record's own transaction: a write that rolls back queues nothing.
@Suite("queueing is transactional")
struct TransactionalQueueTests {
    struct Abort: Error {}

    @Test("a record write whose transaction rolls back queues no job and leaves no record")
    func rollbackQueuesNothing() async throws {
        try await TestStack.freshDatabase("oneo_test") { _, client, logger in
            var tenant: TenantID?
            for try await id in try await client.query("INSERT INTO tenants (slug, name) VALUES ('acme', 'Acme') RETURNING id", logger: logger).decode(TenantID.self) {
                tenant = id
            }
            let tenantID = try #require(tenant)
            var pipeline: PipelineID?
            for try await id in try await client.query("INSERT INTO pipelines (tenant_id, name, slug) VALUES (\(tenantID), 'Leads', 'leads') RETURNING id", logger: logger).decode(PipelineID.self) {
                pipeline = id
            }
            let pipelineID = try #require(pipeline)
            let config = AIFieldConfig(prompt: "Summarize {name}").jsonValue
            try await client.query(
                """
                INSERT INTO fields (tenant_id, pipeline_id, name, slug, field_type, ai_config, position) VALUES
                    (\(tenantID), \(pipelineID), 'Name', 'name', 'text', NULL, 0),
                    (\(tenantID), \(pipelineID), 'Summary', 'summary', 'ai_generated', \(config), 1)
                """,
                logger: logger
            )
            let writer = RecordWriter(tenant: tenantID, defaultModel: "gpt-4o-mini", user: "test")

            let failure = await #expect(throws: PostgresTransactionError.self) {
                try await client.withTransaction(logger: logger) { connection in
                    let record = try await writer.create(pipeline: pipelineID, data: ["name": "Jane"], on: connection, logger: logger)
                    #expect(record.triggered_jobs?.count == 1, "inside the transaction the job was queued")
                    throw Abort()
                }
            }
            #expect(failure?.closureError is Abort)
            #expect(failure?.rollbackError == nil)
            var counts: [Int] = []
            for table in ["records", "ai_jobs"] {
                for try await count in try await client.query("SELECT count(*) FROM \(unescaped: table)", logger: logger).decode(Int.self) {
                    counts.append(count)
                }
            }
            #expect(counts == [0, 0])

            // The same write, committed, does queue: the test above could have failed.
            let committed = try await client.withTransaction(logger: logger) { connection in
                try await writer.create(pipeline: pipelineID, data: ["name": "Jane"], on: connection, logger: logger)
            }
            #expect(committed.triggered_jobs?.count == 1)
            for try await count in try await client.query("SELECT count(*) FROM ai_jobs WHERE status = 'pending'", logger: logger).decode(Int.self) {
                #expect(count == 1)
            }
        }
    }
}
