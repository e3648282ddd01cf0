import Foundation
import Hummingbird
import OneoWire
import OneoStore
import OneoCore
import PostgresNIO

/// The documents a tenant's file_search tool reads: `POST /api/v1/files/` with `{"name":
/// "handbook.md", "media_type": "text/markdown", "content": "…"}` (text, Markdown or HTML, at
/// most 960 KiB), `GET /api/v1/files/`, `DELETE /api/v1/files/{id}/`. A file is stored as sent and
/// is `pending` until the first search after it arrived, when the file_search executor splits it
/// into passages in its jail (`indexed`, with its passage count, or `failed` with why).
struct FileRoutes {
    let database: PostgresClient

    /// Below the API's 1 MiB body limit, with room for the name and JSON escaping.
    static let maximumBytes = 960 * 1024
    /// A tenant keeps at most this many files, and this many bytes in all.
    static let maximumFiles = 200
    static let maximumTotalBytes: Int64 = 64 << 20
    static let mediaTypes = ["text/plain", "text/markdown", "text/html"]

    struct Body: Decodable {
        let name: String?
        let media_type: String?
        let content: String?
    }

    struct FileResource: Codable, Sendable, ResponseEncodable {
        let id: Int64
        let name: String
        let media_type: String
        let size: Int
        let status: String
        let passages: Int
        @ExplicitNull var error: String?
        let created_at: Date
    }

    /// Rows of `id, name, media_type, size, status, passages, error, created_at` as files.
    static func files(in rows: PostgresRowSequence) async throws -> [FileResource] {
        var files: [FileResource] = []
        for try await row in rows.decode((Int64, String, String, Int, String, Int, String?, Date).self) {
            files.append(FileResource(id: row.0, name: row.1, media_type: row.2, size: row.3, status: row.4, passages: row.5, error: row.6, created_at: row.7))
        }
        return files
    }

    /// The advisory lock of a tenant's upload allowance is this class above the tenant's id.
    static let quotaLockClass: Int64 = 0x6F66

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("files") { request, context in
            let caller = try context.require(.create)
            let body = try await request.decodeBody(Body.self, context: context)
            guard let name = body.name, (1...200).contains(name.utf8.count), PlainText.bounded(name, 200) == name else {
                throw APIError.invalid("name is required: 1 to 200 bytes of printable text")
            }
            let type = body.media_type ?? (name.lowercased().hasSuffix(".html") || name.lowercased().hasSuffix(".htm") ? "text/html" : name.lowercased().hasSuffix(".md") ? "text/markdown" : "text/plain")
            guard Self.mediaTypes.contains(type) else { throw APIError.invalid("media_type must be one of \(Self.mediaTypes.joined(separator: ", "))") }
            guard let content = body.content, !content.isEmpty else { throw APIError.invalid("content is required: the document's text") }
            guard content.utf8.count <= Self.maximumBytes else { throw APIError.invalid("content is \(content.utf8.count) bytes; at most \(Self.maximumBytes)") }
            guard !content.utf8.contains(0) else { throw APIError.invalid("content may not contain NUL bytes") }
            let file = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> FileResource in
                // One upload of a tenant at a time checks and adds to its allowance.
                try await connection.query("SELECT pg_advisory_xact_lock(\(Self.quotaLockClass << 40 | caller.tenant.rawValue))", logger: context.logger)
                for try await (count, bytes) in try await connection.query(
                    "SELECT count(*), coalesce(sum(size), 0)::bigint FROM tenant_files WHERE tenant_id = \(caller.tenant.rawValue)",
                    logger: context.logger
                ).decode((Int64, Int64).self) {
                    guard count < Self.maximumFiles else { throw APIError.conflict("this workspace keeps at most \(Self.maximumFiles) files; delete some first") }
                    guard bytes + Int64(content.utf8.count) <= Self.maximumTotalBytes else {
                        throw APIError.conflict("this workspace keeps at most \(Self.maximumTotalBytes >> 20) MiB of files; delete some first")
                    }
                }
                let rows = try await connection.query(
                    """
                    INSERT INTO tenant_files (tenant_id, name, media_type, content)
                    VALUES (\(caller.tenant.rawValue), \(name), \(type), \(content))
                    RETURNING id, name, media_type, size, status, passages, error, created_at
                    """,
                    logger: context.logger
                )
                guard let file = try await Self.files(in: rows).first else { throw APIError.internalFailure("the file was not stored") }
                return file
            }
            return EditedResponse(status: .created, response: file)
        }
        group.get("files") { request, context in
            let caller = try context.require(.read)
            let files = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> [FileResource] in
                try await Self.files(in: connection.query(
                    "SELECT id, name, media_type, size, status, passages, error, created_at FROM tenant_files WHERE tenant_id = \(caller.tenant.rawValue) ORDER BY id",
                    logger: context.logger
                ))
            }
            return Page(count: files.count, next: nil, previous: nil, results: files)
        }
        group.delete("files/:file") { request, context in
            let caller = try context.require(.create)
            guard let id = Int64(try context.parameters.require("file")) else { throw APIError.notFound("file") }
            let deleted = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> Bool in
                let rows = try await connection.query("DELETE FROM tenant_files WHERE id = \(id) AND tenant_id = \(caller.tenant.rawValue) RETURNING id", logger: context.logger)
                for try await _ in rows { return true }
                return false
            }
            guard deleted else { throw APIError.notFound("file") }
            return Response(status: .noContent)
        }
    }
}
