import Foundation
import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// Pipelines and their fields, always within one tenant.
struct PipelineStore: Sendable {
    let database: PostgresClient
    /// (tenant, id or slug) → pipeline. Pipelines are never renamed or deleted through the API,
    /// so a short-lived copy cannot point at the wrong one.
    let resolved = ShortLivedCache<ResolveKey, PipelineResource>(lifetime: .seconds(60))

    struct ResolveKey: Hashable, Sendable {
        let tenant: TenantID
        let reference: String
    }

    func create(tenant: TenantID, name: String, slug: String, logger: Logger) async throws -> PipelineResource {
        do {
            let created = try await self.database.asTenant(tenant, logger: logger) { connection -> PipelineResource? in
                let rows = try await connection.query(
                    """
                    INSERT INTO pipelines (tenant_id, name, slug) VALUES (\(tenant), \(name), \(slug))
                    RETURNING id, name, slug, created_at
                    """,
                    logger: logger
                )
                for try await (id, name, slug, created) in rows.decode((PipelineID, String, String, Date).self) {
                    return PipelineResource(id: id, name: name, slug: slug, created_at: created)
                }
                return nil
            }
            if let created { return created }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw APIError.conflict("a pipeline with slug '\(slug)' already exists")
        }
        throw APIError.internalFailure("pipeline insert returned no row")
    }

    func list(tenant: TenantID, logger: Logger) async throws -> [PipelineResource] {
        try await self.database.asTenant(tenant, logger: logger) { connection in
            let rows = try await connection.query(
                "SELECT id, name, slug, created_at FROM pipelines WHERE tenant_id = \(tenant) ORDER BY id",
                logger: logger
            )
            var result: [PipelineResource] = []
            for try await (id, name, slug, created) in rows.decode((PipelineID, String, String, Date).self) {
                result.append(PipelineResource(id: id, name: name, slug: slug, created_at: created))
            }
            return result
        }
    }

    /// A pipeline by id or slug, as `{pipeline}` in a URL accepts either.
    func resolve(tenant: TenantID, _ reference: String, logger: Logger) async throws -> PipelineResource {
        let id = PipelineID(parsing: reference)
        // One key per pipeline id however it is spelled ("5", "05", "+5"), so no caller can fill
        // the shared cache with spellings of one pipeline.
        let key = ResolveKey(tenant: tenant, reference: id.map { "#\($0.rawValue)" } ?? reference)
        if let cached = self.resolved.value(for: key) { return cached }
        let found = try await self.database.asTenant(tenant, logger: logger) { connection -> PipelineResource? in
            let rows = try await connection.query(
                """
                SELECT id, name, slug, created_at FROM pipelines
                WHERE tenant_id = \(tenant) AND (id = \(id?.rawValue ?? -1) OR slug = \(reference))
                ORDER BY (id = \(id?.rawValue ?? -1)) DESC LIMIT 1
                """,
                logger: logger
            )
            for try await (id, name, slug, created) in rows.decode((PipelineID, String, String, Date).self) {
                return PipelineResource(id: id, name: name, slug: slug, created_at: created)
            }
            return nil
        }
        if let found {
            self.resolved.store(found, for: key)
            return found
        }
        throw APIError.notFound("pipeline '\(reference)'")
    }

    func fields(tenant: TenantID, pipeline: PipelineID, logger: Logger) async throws -> [PipelineField] {
        try await self.database.asTenant(tenant, logger: logger) { connection in
            try await Self.fields(tenant: tenant, pipeline: pipeline, query: { try await connection.query($0, logger: logger) })
        }
    }

    /// Shared by the record writer, which reads fields inside its own transaction.
    static func fields(
        tenant: TenantID,
        pipeline: PipelineID,
        query: (PostgresQuery) async throws -> PostgresRowSequence
    ) async throws -> [PipelineField] {
        let rows = try await query(
            """
            SELECT id, slug, name, field_type, position, ai_config FROM fields
            WHERE tenant_id = \(tenant) AND pipeline_id = \(pipeline) ORDER BY position, id
            """
        )
        var fields: [PipelineField] = []
        for try await (id, slug, name, type, position, config) in rows.decode((FieldID, String, String, String, Int, JSONValue?).self) {
            let aiConfig = try config.map { value throws -> AIFieldConfig in try AIFieldConfig(validating: value, stored: true) }
            fields.append(PipelineField(id: id, slug: slug, name: name, type: FieldType(rawValue: type) ?? .text, position: position, aiConfig: aiConfig))
        }
        return fields
    }

    func addField(
        tenant: TenantID,
        pipeline: PipelineID,
        name: String,
        slug: String,
        type: FieldType,
        aiConfig: JSONValue?,
        logger: Logger
    ) async throws -> FieldResource {
        do {
            let added = try await self.database.asTenant(tenant, logger: logger) { connection -> FieldResource? in
                let rows = try await connection.query(
                    """
                    WITH bumped AS (
                        UPDATE pipelines SET fields_version = fields_version + 1, updated_at = now()
                        WHERE id = \(pipeline) AND tenant_id = \(tenant) RETURNING id),
                    ids AS (
                        -- Both ids first: the field names its first version and the version its field,
                        -- and a sibling statement of one WITH cannot see the other's new row.
                        SELECT nextval('fields_id_seq') AS field_id,
                               CASE WHEN \(aiConfig)::jsonb IS NULL THEN NULL ELSE nextval('field_versions_id_seq') END AS version_id),
                    field AS (
                        INSERT INTO fields (id, tenant_id, pipeline_id, name, slug, field_type, ai_config, position, version_id)
                        SELECT ids.field_id, \(tenant), bumped.id, \(name), \(slug), \(type.rawValue), \(aiConfig),
                               (SELECT coalesce(max(position), -1) + 1 FROM fields WHERE pipeline_id = \(pipeline)), ids.version_id
                        FROM bumped, ids
                        RETURNING id, position, ai_config, version_id),
                    version AS (
                        INSERT INTO field_versions (id, tenant_id, field_id, ai_config)
                        SELECT version_id, \(tenant), id, ai_config FROM field WHERE version_id IS NOT NULL)
                    SELECT id, position FROM field
                    """,
                    logger: logger
                )
                for try await (id, position) in rows.decode((FieldID, Int).self) {
                    return FieldResource(
                        id: id, pipeline: pipeline, name: name, slug: slug, field_type: type.rawValue, position: position, ai_config: aiConfig
                    )
                }
                return nil
            }
            if let added { return added }
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "23505" {
            throw APIError.conflict("pipeline already has a field with slug '\(slug)'")
        }
        throw APIError.internalFailure("field insert returned no row")
    }
}
