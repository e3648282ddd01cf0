import Foundation
import OneoWire
import OneoTesting
import PostgresNIO
import StackControl
import Testing

/// The operator's fallback key: used by a tenant only when set to, never silently, shown as such
/// by `tenant show`, and never used for another tenant.
@Suite("operator fallback key", .timeLimit(.minutes(3)))
struct OperatorKeyTests {
    static func job(_ api: JSONClient, _ name: String) async throws -> String {
        let created = try await api.post("/pipelines/leads/records/", ["data": ["name": .string(name)]])
        return try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue, "\(created.body)")
    }

    static func pipeline(_ api: JSONClient) async throws {
        #expect(try await api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        #expect(try await api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
        #expect(try await api.post("/pipelines/leads/fields/", [
            "name": "AI", "slug": "ai", "field_type": "ai_generated", "ai_config": ["prompt": "Hi {name}"],
        ]).status == 201)
    }

    static func completed(_ api: JSONClient, _ job: String) async throws {
        try await waitUntil("job \(job) to complete") { try await api.get("/ai-jobs/\(job)/")["status"] == "completed" }
    }

    @Test("a tenant set to the operator's key calls with it; set back, with its own; another tenant never with it")
    func fallbackOnlyWhenSet() async throws {
        try await TestStack.with { stack in
            try await Self.pipeline(stack.api)
            #expect(try await stack.cli(["tenant", "show", stack.tenant]).contains("its own (set)"))
            _ = try await stack.cli(["tenant", "set-key-source", stack.tenant, "operator"])
            #expect(try await stack.cli(["tenant", "show", stack.tenant]).contains("operator's fallback key (NOT SET"))
            let keyFile = stack.directory + "/operator.key"
            #expect(FileManager.default.createFile(atPath: keyFile, contents: Data("operator-test-key-9\n".utf8), attributes: [.posixPermissions: 0o600]))
            // The tenant points its own base URL somewhere else (a gateway of its own, say): the
            // operator's key must still go only to the operator's base URL.
            _ = try await stack.cli(["tenant", "set-base-url", stack.tenant, "http://127.0.0.1:9/v1"])
            let operatorURL = stack.local.simulatorBase + "/v1"
            let stored = try await stack.cli(["operator", "set-key", "--api-key-file", keyFile, "--base-url", operatorURL])
            #expect(stored.contains("1 tenant(s) use it: \(stack.tenant)"))
            #expect(try await stack.cli(["tenant", "show", stack.tenant]).contains("the operator's fallback key, sent to \(operatorURL)"))
            let first = try await Self.job(stack.api, "Ada")
            try await Self.completed(stack.api, first)
            #expect(try await stack.providerRequests().last?.authorization == "Bearer operator-test-key-9")

            // Another tenant keeps its own key: no silent fallback for anyone.
            let other = try await stack.addTenant("globex", providerKey: "test-provider-key-2")
            try await Self.pipeline(other)
            let theirs = try await Self.job(other, "Bob")
            try await Self.completed(other, theirs)
            #expect(try await stack.providerRequests().last?.authorization == "Bearer test-provider-key-2")

            _ = try await stack.cli(["tenant", "set-base-url", stack.tenant, operatorURL])
            _ = try await stack.cli(["tenant", "set-key-source", stack.tenant, "own"])
            let second = try await Self.job(stack.api, "Cy")
            try await Self.completed(stack.api, second)
            #expect(try await stack.providerRequests().last?.authorization == "Bearer test-provider-key-1")
            // The sealed key is in the database, never the key itself.
            #expect(try await stack.count("SELECT count(*) FROM operator_settings WHERE position('operator-test-key-9' in encode(fallback_key_sealed, 'escape')) > 0") == 0)
            await #expect(throws: (any Error).self) { try await stack.cli(["tenant", "set-key-source", stack.tenant, "somebody"]) }
            // A base URL carrying a credential is refused (it would be printed wherever it is shown).
            await #expect(throws: (any Error).self) { try await stack.cli(["tenant", "set-base-url", stack.tenant, "https://user:secret@example.com/v1"]) }
            await #expect(throws: (any Error).self) { try await stack.cli(["operator", "set-key", "--api-key-file", keyFile, "--base-url", "https://example.com/v1?api-key=x"]) }
        }
    }
}
