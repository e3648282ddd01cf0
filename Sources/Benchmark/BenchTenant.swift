import AsyncHTTPClient
import Logging
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import StackControl

/// A benchmark tenant: added through the registry, with an API token, pipeline `leads` and the
/// AI field `summary` made through the HTTP API.
enum BenchTenant {
    /// - Parameter holdProcessor: the operator stops the tenant's processor first (`tenant stop`),
    ///   so that its jobs stay pending for whoever else takes them (pgbench).
    static func make(_ registry: TenantRegistry, slug: String, holdProcessor: Bool, stack: LocalStack, http: HTTPClient, logger: Logger) async throws -> JSONClient {
        _ = try await registry.add(.init(slug: slug, name: "Tenant \(slug)", baseURL: stack.simulatorBase + "/v1", model: "gpt-4o-mini", key: ProviderKey("bench-provider-key"), active: true), logger: logger)
        if holdProcessor {
            let reply = try await ControlClient.send(.init(command: .stop, tenant: slug), path: DataDirectory(stack.directory + "/data").controlSocket, timeout: .seconds(30))
            if let error = reply.error { throw BenchmarkError("could not hold tenant \(slug)'s processor: \(error)") }
        }
        let token = try await registry.createToken(tenant: slug, name: "bench", permissions: [.read, .create], logger: logger)
        let api = JSONClient(baseURL: stack.apiBase + "/api/v1", token: token, http: http)
        try await self.expect(201, api.post("/pipelines/", ["name": "Leads", "slug": "leads"]))
        for (name, slug) in [("Name", "name"), ("Company", "company"), ("Industry", "industry"), ("Notes", "notes")] {
            try await self.expect(201, api.post("/pipelines/leads/fields/", ["name": .string(name), "slug": .string(slug), "field_type": "text"]))
        }
        try await self.expect(201, api.post("/pipelines/leads/fields/", [
            "name": "Summary", "slug": "summary", "field_type": "ai_generated",
            "ai_config": ["prompt": "Summarize this lead: {*}", "model": "gpt-4o-mini", "max_tokens": 200],
        ]))
        return api
    }

    static func expect(_ status: Int, _ response: JSONClient.Response) throws {
        guard response.status == status else { throw BenchmarkError("API answered \(response.status): \(response.body.compactJSON)") }
    }
}
