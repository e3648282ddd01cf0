import API
import Foundation
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Logging
import NIOCore
import OneoCore
import OneoStore
import OneoTesting
import OneoWire
import PostgresNIO
import Testing

/// The API's routes in process (HummingbirdTesting's router client), on a real PostgreSQL and
/// connected as the API's own role: no serve, no processes, no sockets.
@Suite("API routes in process")
struct APIRouteTests {
    struct Tokens: Sendable {
        let acme: String
        let globex: String
        let suspended: String
    }

    /// A fresh database with three tenants (one suspended) and a token each, and the API
    /// application connected as the database's API role.
    static func withAPI(_ body: @Sendable (any TestClientProtocol, Tokens) async throws -> Void) async throws {
        try await TestStack.freshDatabase("oneo_routes") { name, client, logger in
            try await Self.serve(database: name, client: client, logger: logger, body)
        }
    }

    private static func serve(database name: String, client: PostgresClient, logger: Logger, _ body: @Sendable (any TestClientProtocol, Tokens) async throws -> Void) async throws {
        // With passwords the roles may log in (the test server trusts its socket, so which
        // password does not matter; what the API role may do does).
        let passwords = (api: RoleSetup.freshPassword(), queueManager: RoleSetup.freshPassword(), files: RoleSetup.freshPassword())
        #expect(try await RoleSetup.apply(RoleSetup.roles(forDatabase: name), passwords: passwords, client: client, logger: logger) == .applied)
        let registry = TenantRegistry(database: client, sealer: nil)
        var created: [String] = []
        for (slug, active) in [("acme", true), ("globex", true), ("dormant", false)] {
            _ = try await registry.add(.init(slug: slug, name: slug, baseURL: "http://127.0.0.1:9/v1", model: "gpt-4o-mini", key: nil, active: active), logger: logger)
            created.append(try await registry.createToken(tenant: slug, name: "routes", permissions: [.read, .create], logger: logger))
        }
        let tokens = Tokens(acme: created[0], globex: created[1], suspended: created[2])
        var settings = try DatabaseSettings(url: try TestServices.databaseURL(named: name))
        settings.username = RoleSetup.roles(forDatabase: name).api
        settings.password = nil
        let database = PostgresClient(configuration: settings.clientConfiguration(maximumConnections: 2, applicationName: "oneo-api-test"))
        let application = APIServer.application(database: database, host: "127.0.0.1", port: 0, logger: Logger(label: "oneo.test.api"))
        try await application.test(.router) { client in try await body(client, tokens) }
    }

    static func call(_ client: any TestClientProtocol, _ method: HTTPRequest.Method, _ path: String, token: String?, _ body: JSONValue? = nil) async throws -> (HTTPResponse.Status, JSONValue) {
        var headers: HTTPFields = [.contentType: "application/json"]
        if let token { headers[.authorization] = "Bearer \(token)" }
        return try await client.execute(
            uri: "/api/v1" + path, method: method, headers: headers,
            body: body.map { ByteBuffer(string: $0.compactJSON) }
        ) { response in
            (response.status, (try? JSONValue.parse(Array(response.body.readableBytesView))) ?? .null)
        }
    }

    @Test("no token 401, a suspended tenant's 403, each in the one error shape")
    func authentication() async throws {
        try await Self.withAPI { client, tokens in
            let (missing, missingBody) = try await Self.call(client, .get, "/pipelines/", token: nil)
            #expect(missing == .unauthorized)
            #expect(missingBody["code"]?.stringValue == "unauthenticated")
            let (suspended, suspendedBody) = try await Self.call(client, .get, "/pipelines/", token: tokens.suspended)
            #expect(suspended == .forbidden)
            #expect(suspendedBody["code"]?.stringValue == "tenant_suspended")
            #expect(try await Self.call(client, .get, "/pipelines/", token: "oneo_not-a-token").0 == .unauthorized)
        }
    }

    @Test("a record write queues its job in the same transaction; another tenant sees none of it; a bad status filter is 422")
    func writesAndIsolation() async throws {
        try await Self.withAPI { client, tokens in
            #expect(try await Self.call(client, .post, "/pipelines/", token: tokens.acme, ["name": "Leads", "slug": "leads"]).0 == .created)
            #expect(try await Self.call(client, .post, "/pipelines/leads/fields/", token: tokens.acme, ["name": "Name", "slug": "name", "field_type": "text"]).0 == .created)
            let (field, fieldBody) = try await Self.call(client, .post, "/pipelines/leads/fields/", token: tokens.acme, [
                "name": "Summary", "slug": "summary", "field_type": "ai_generated", "ai_config": ["prompt": "Summarize {name}"],
            ])
            #expect(field == .created, "\(fieldBody)")
            let (created, record) = try await Self.call(client, .post, "/pipelines/leads/records/", token: tokens.acme, ["data": ["name": "Jane"]])
            #expect(created == .created)
            #expect(record["triggered_jobs"]?.arrayValue?.count == 1)
            let (_, pending) = try await Self.call(client, .get, "/ai-jobs/?status=pending", token: tokens.acme)
            #expect(pending["count"]?.integerValue == 1)
            // globex: the same URLs find nothing of acme's.
            #expect(try await Self.call(client, .get, "/pipelines/leads/", token: tokens.globex).0 == .notFound)
            let (_, theirs) = try await Self.call(client, .get, "/ai-jobs/", token: tokens.globex)
            #expect(theirs["count"]?.integerValue == 0)
            let (invalid, invalidBody) = try await Self.call(client, .get, "/ai-jobs/?status=done", token: tokens.acme)
            #expect(invalid == .unprocessableContent)
            #expect(invalidBody["message"]?.stringValue?.contains("pending, processing, completed, failed, cancelled") == true)
        }
    }
}
