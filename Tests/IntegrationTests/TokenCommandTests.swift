import Foundation
import OneoWire
import OneoTesting
import OneoStore
import PostgresNIO
import StackControl
import Testing

/// Operators list and revoke tokens; the API refuses revoked tokens and a suspended tenant's.
@Suite("API tokens")
struct TokenCommandTests {
    @Test("token list shows prefixes, never tokens; token revoke shuts the token out; a suspended tenant's token gets 403")
    func listRevokeSuspend() async throws {
        try await TestStack.with(processorHeld: true) { stack in
            #expect(try await stack.api.get("/pipelines/").status == 200)
            let created = try await stack.cli(["token", "create", "--tenant", stack.tenant, "--name", "second"])
            let second = try #require(created.split(separator: "\n").last { $0.hasPrefix("oneo_") }.map(String.init))
            let listing = try await stack.cli(["token", "list", "--tenant", stack.tenant])
            #expect(!listing.contains(second), "the list never shows a token")
            #expect(listing.contains(String(second.prefix(9))), "it shows each token's prefix:\n\(listing)")
            // The table's rows (the output also carries the CLI's log lines at debug level).
            let rows = listing.split(separator: "\n").map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
                .filter { $0.count == 6 && Int64($0[0]) != nil }
            #expect(rows.count == 2)
            let secondRow = try #require(rows.first { $0[1] == "second" })
            let other = JSONClient(baseURL: stack.local.apiBase + "/api/v1", token: second)
            #expect(try await other.get("/pipelines/").status == 200)

            try await stack.cli(["token", "revoke", "--tenant", stack.tenant, "--id", secondRow[0]])
            try await waitUntil("the revoked token to be refused", timeout: .seconds(10)) {
                try await other.get("/pipelines/").status == 401
            }
            #expect(try await stack.api.get("/pipelines/").status == 200, "the other token still works")
            let again = await #expect(throws: CommandFailed.self) {
                try await stack.cli(["token", "revoke", "--tenant", stack.tenant, "--id", secondRow[0]])
            }
            #expect(again?.output.contains("no unrevoked token") == true)
            #expect(try await stack.cli(["token", "list", "--tenant", stack.tenant]).contains("\tsecond\t"))

            try await stack.withDatabase { client, logger in
                _ = try await client.query("UPDATE tenants SET status = 'suspended' WHERE slug = \(stack.tenant)", logger: logger)
            }
            try await waitUntil("the suspended tenant's token to be refused", timeout: .seconds(10)) {
                let response = try await stack.api.get("/pipelines/")
                return response.status == 403 && response.body["code"]?.stringValue == "tenant_suspended"
            }
        }
    }
}
