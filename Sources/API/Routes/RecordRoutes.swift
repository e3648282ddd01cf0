import Foundation
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// `/api/v1/pipelines/{pipeline}/records/`: writes queue the AI jobs they call for, in the same
/// transaction as the record.
struct RecordRoutes {
    let database: PostgresClient
    let pipelines: PipelineStore
    let maxAttempts: Int

    struct RecordBody: Decodable {
        let data: [String: JSONValue]
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("pipelines/:pipeline/records") { request, context in
            let caller = try context.require(.create)
            let pipeline = try await self.pipeline(request, context, caller)
            let body = try await request.decodeBody(RecordBody.self, context: context)
            let writer = RecordWriter(
                tenant: caller.tenant, defaultModel: caller.defaultModel, user: caller.tokenName,
                tenantSensitiveNames: caller.sensitiveNames, maxAttempts: self.maxAttempts
            )
            let record = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                try await writer.create(pipeline: pipeline.id, data: body.data, on: connection, logger: context.logger)
            }
            return EditedResponse(status: .created, response: record)
        }
        group.patch("pipelines/:pipeline/records/:record") { request, context in
            let caller = try context.require(.create)
            let pipeline = try await self.pipeline(request, context, caller)
            let id = try self.recordID(context)
            let body = try await request.decodeBody(RecordBody.self, context: context)
            let writer = RecordWriter(
                tenant: caller.tenant, defaultModel: caller.defaultModel, user: caller.tokenName,
                tenantSensitiveNames: caller.sensitiveNames, maxAttempts: self.maxAttempts
            )
            return try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                try await writer.update(pipeline: pipeline.id, record: id, patch: body.data, on: connection, logger: context.logger)
            }
        }
        group.get("pipelines/:pipeline/records/:record") { request, context in
            let caller = try context.require(.read)
            let pipeline = try await self.pipeline(request, context, caller)
            let id = try self.recordID(context)
            let found = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> RecordResource? in
                let rows = try await connection.query(
                    """
                    SELECT id, data, version, created_at, updated_at FROM records
                    WHERE id = \(id) AND tenant_id = \(caller.tenant) AND pipeline_id = \(pipeline.id)
                    """,
                    logger: context.logger
                )
                for try await (id, data, version, created, updated) in rows.decode((RecordID, JSONValue, Int64, Date, Date).self) {
                    return RecordResource(id: id, pipeline: pipeline.id, data: data, version: version, created_at: created, updated_at: updated)
                }
                return nil
            }
            guard let found else { throw APIError.notFound("record \(id)") }
            return found
        }
    }

    private func pipeline(_ request: Request, _ context: APIRequestContext, _ caller: Caller) async throws -> PipelineResource {
        try await self.pipelines.resolve(tenant: caller.tenant, try context.parameters.require("pipeline"), logger: context.logger)
    }

    private func recordID(_ context: APIRequestContext) throws -> RecordID {
        let text = try context.parameters.require("record")
        guard let id = RecordID(parsing: text) else { throw APIError.notFound("record '\(text)'") }
        return id
    }
}
