import Foundation
import OneoTesting
import OneoWire
import OneoStore
import PostgresNIO
import StackControl
import Testing

/// Tool calling end to end: a field with tools on offers them to the model, the model's call
/// runs in the code interpreter's jail through the supervisor's router, the result goes back to
/// the model as data, and the job records the call and pays its fee.
@Suite("tool calling", .serialized, .timeLimit(.minutes(3)))
struct ToolCallingTests {
    static let jailsAvailable: Bool = {
        let maximum = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return Int(maximum ?? "0") ?? 0 > 0
    }()

    @Test(
        "a field with the code interpreter: the model's code runs in the jail and its output reaches the answer; the job records the call and its fee",
        .enabled(if: Self.jailsAvailable, "the code interpreter's jail needs user namespaces, which this kernel has turned off")
    )
    func codeInterpreter() async throws {
        try await TestStack.with(tunables: ["ONEO_TOOLS_EXECUTORS": "2"]) { stack in
            try await waitUntil("the code interpreter's executors to run") {
                let first = try await stack.child("tool:code_interpreter:1")?.state
                let second = try await stack.child("tool:code_interpreter:2")?.state
                return first == .running && second == .running
            }
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Score", "slug": "score", "field_type": "ai_generated",
                "ai_config": [
                    "prompt": "Score {name}. [sim-tool code_interpreter]print(6 * 7)[/sim-tool]",
                    "enable_tools": true, "allowed_tools": ["code_interpreter"], "cache_duration": 0,
                ],
            ])
            try #require(field.status == 201, "\(field.body)")
            let plain = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Plain", "slug": "plain", "field_type": "ai_generated",
                "ai_config": ["prompt": "Describe {name}. [sim-tool code_interpreter]print(1)[/sim-tool]", "cache_duration": 0],
            ])
            try #require(plain.status == 201, "\(plain.body)")
            let record = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let id = try #require(record["id"]?.integerValue)
            var jobs: [JSONValue] = []
            try await waitUntil("both fields' jobs to finish") {
                jobs = try await stack.api.get("/ai-jobs/?record_id=\(id)")["results"]?.arrayValue ?? []
                return jobs.count == 2 && jobs.allSatisfy { ["completed", "failed"].contains($0["status"]?.stringValue ?? "") }
            }
            // The estimate of a tool field bounds the whole loop: every round at its largest and
            // every tool call's fee (8 rounds × 4 calls × 3 cents), far above one plain call.
            let estimate = try await stack.api.post("/pipelines/leads/fields/score/generate/", ["records": "all"])
            #expect((estimate["worst_case_cost_micros"]?.integerValue ?? 0) >= 32 * 30_000, "\(estimate.body)")
            let plainEstimate = try await stack.api.post("/pipelines/leads/fields/plain/generate/", ["records": "all"])
            #expect((plainEstimate["worst_case_cost_micros"]?.integerValue ?? .max) < 30_000, "\(plainEstimate.body)")
            let scored = try #require(jobs.first { $0["field_name"] == "score" })
            #expect(scored["status"] == "completed", "\(scored)")
            let calls = try #require(scored["tool_calls"]?.arrayValue)
            #expect(calls.count == 1)
            #expect(calls.first?["tool"] == "code_interpreter")
            #expect(calls.first?["error"] == .null, "\(calls)")
            #expect(calls.first?["cost_micros"]?.integerValue == 30_000, "the call's own fee, from the catalog: \(calls)")
            // The code interpreter's fee (3 cents) is in the job's cost, beside the tokens.
            #expect((scored["cost_micros"]?.integerValue ?? 0) >= 30_000, "\(scored["cost_micros"] ?? .null)")
            let data = try #require(try await stack.api.get("/pipelines/leads/records/\(id)/")["data"])
            #expect(data["score"]?.stringValue?.contains("42") == true, "the tool's output reached the answer: \(data["score"] ?? .null)")

            let requests = try await stack.providerRequests().map { try JSONValue.parse(Array($0.body.utf8)) }
            let offered = requests.filter { $0["tools"] != nil }
            #expect(offered.count == 2, "the scored field's two calls offer the tool; the plain field's does not")
            #expect(offered.first?["tools"]?[0]?["function"]?["name"] == "code_interpreter")
            let answer = try #require(offered.last?["messages"]?.arrayValue?.last)
            #expect(answer["role"] == "tool")
            #expect(answer["content"]?.stringValue?.hasPrefix("<data>") == true, "tool results reach the model marked as data")
            #expect(answer["content"]?.stringValue?.contains("42") == true)
            let plainJob = try #require(jobs.first { $0["field_name"] == "plain" })
            #expect(plainJob["tool_calls"]?.arrayValue?.isEmpty == true, "a field without tools offers none")

            // Files the code writes are kept with the job and served as downloads, never inline.
            let charted = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Chart", "slug": "chart", "field_type": "ai_generated",
                "ai_config": [
                    "prompt": "Chart {name}. [sim-tool code_interpreter]import base64\nopen('chart.png', 'wb').write(base64.b64decode('iVBORw0KGgoAAAANSUhEUg=='))\nopen('x.svg', 'w').write('<svg onload=alert(1)></svg>')\nprint('drawn')[/sim-tool]",
                    "enable_tools": true, "allowed_tools": ["code_interpreter"], "cache_duration": 0, "auto_regenerate": false,
                ],
            ])
            try #require(charted.status == 201, "\(charted.body)")
            let generated = try await stack.api.post("/pipelines/leads/records/\(id)/generate/", ["field": "chart", "wait_ms": 20000])
            try #require(generated["status"] == "completed", "\(generated.body)")
            let chartJob = try #require(generated["id"]?.stringValue ?? generated["id"]?.integerValue.map { "\($0)" })
            let artifacts = try #require(try await stack.api.get("/ai-jobs/\(chartJob)/")["artifacts"]?.arrayValue)
            #expect(artifacts.compactMap { $0["name"]?.stringValue } == ["chart.png", "x.svg"], "\(artifacts)")
            let png = try await stack.api.download("/ai-jobs/\(chartJob)/artifacts/chart.png")
            #expect(png.status == 200)
            #expect(png.bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])
            #expect(png.headers["content-type"] == "image/png")
            #expect(png.headers["x-content-type-options"] == "nosniff")
            #expect(png.headers["content-disposition"]?.hasPrefix("attachment") == true)
            let svg = try await stack.api.download("/ai-jobs/\(chartJob)/artifacts/x.svg")
            #expect(svg.headers["content-type"] == "application/octet-stream", "a page a browser would run is only ever a download")
            #expect(try await stack.api.download("/ai-jobs/\(chartJob)/artifacts/..%2Fetc").status == 404)
            #expect(try await stack.api.download("/ai-jobs/\(chartJob)/artifacts/missing.png").status == 404)

            // The tenant's tools off: the same field runs without being offered any.
            try await stack.cli(["tenant", "set-tools", stack.tenant, "off"])
            #expect(try await stack.cli(["tenant", "show", stack.tenant]).contains("off (no field of this tenant calls a tool)"))
            let before = try await stack.providerRequests().count
            let second = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Grace"]])
            let secondID = try #require(second["id"]?.integerValue)
            try await waitUntil("the second record's jobs to finish") {
                let jobs = try await stack.api.get("/ai-jobs/?record_id=\(secondID)")["results"]?.arrayValue ?? []
                return jobs.count == 2 && jobs.allSatisfy { ["completed", "failed"].contains($0["status"]?.stringValue ?? "") }
            }
            let after = try await stack.providerRequests().dropFirst(before).map { try JSONValue.parse(Array($0.body.utf8)) }
            #expect(after.count == 2, "one call per field, no tool round")
            #expect(after.allSatisfy { $0["tools"] == nil }, "no tool is offered while the tenant's tools are off")
        }
    }

    @Test(
        "web search and image generation: each runs in its jail over a connection the router brokers; the search results reach the model as data, hostile URLs dropped; the image becomes an artifact paid at the catalog's image price, made with the tenant's own key",
        .enabled(if: Self.jailsAvailable, "the executors' jails need user namespaces, which this kernel has turned off")
    )
    func webSearchAndImages() async throws {
        // The simulator stands for the tenants' provider on 127.0.0.1: the operator allows that.
        try await TestStack.with(serveOptions: ["--search-url", LocalStack.simulatorPlaceholder + "/searxng", "--allow-private-providers"]) { stack in
            try await waitUntil("the web search and image executors to run") {
                let search = try await stack.child("tool:web_search:1")?.state
                let images = try await stack.child("tool:image_generation:1")?.state
                return search == .running && images == .running
            }
            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            for (slug, prompt, tools) in [
                ("news", "News on {name}. [sim-tool web_search]ada lovelace[/sim-tool]", ["web_search"]),
                ("portrait", "Draw {name}. [sim-tool image_generation]a portrait in ink[/sim-tool]", ["image_generation"]),
                ("sneaky", "Draw {name}. [sim-tool image_generation]a portrait[/sim-tool]", ["web_search"]),
                ("flood", "Look up {name}. [sim-tool web_search]sim-oversized[/sim-tool]", ["web_search"]),
            ] {
                let field = try await stack.api.post("/pipelines/leads/fields/", [
                    "name": .string(slug), "slug": .string(slug), "field_type": "ai_generated",
                    "ai_config": ["prompt": .string(prompt), "enable_tools": true, "allowed_tools": .array(tools.map { .string($0) }), "cache_duration": 0],
                ])
                try #require(field.status == 201, "\(field.body)")
            }
            let record = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let id = try #require(record["id"]?.integerValue)
            var jobs: [JSONValue] = []
            try await waitUntil("the four fields' jobs to finish") {
                jobs = try await stack.api.get("/ai-jobs/?record_id=\(id)")["results"]?.arrayValue ?? []
                return jobs.count == 4 && jobs.allSatisfy { ["completed", "failed"].contains($0["status"]?.stringValue ?? "") }
            }
            // A backend that answers 3 MiB: the search fails with a reason the model reads, the
            // job completes, and the executor serves the other fields' calls.
            let flood = try #require(jobs.first { $0["field_name"] == "flood" })
            #expect(flood["status"] == "completed", "\(flood)")
            let flooded = try #require(flood["tool_calls"]?.arrayValue?.first)
            #expect(flooded["error"]?.stringValue?.contains("over") == true, "\(flooded)")
            #expect(flooded["cost_micros"]?.integerValue == 0)

            // Web search: the backend was asked, the results went back to the model fenced as
            // data, the javascript: URL did not; the call was paid at the catalog's 1 cent.
            let news = try #require(jobs.first { $0["field_name"] == "news" })
            #expect(news["status"] == "completed", "\(news)")
            let searchCall = try #require(news["tool_calls"]?.arrayValue?.first)
            #expect(searchCall["tool"] == "web_search")
            #expect(searchCall["error"] == .null, "\(searchCall)")
            #expect(searchCall["cost_micros"]?.integerValue == 10_000)
            let searches = try await stack.providerRequests(path: "/searxng/search")
            #expect(searches.map(\.body).filter { $0 != "sim-oversized" } == ["ada lovelace"], "one search, with the model's query")
            let chats = try await stack.providerRequests().map { try JSONValue.parse(Array($0.body.utf8)) }
            let searched = try #require(chats.last { $0["messages"]?.arrayValue?.last?["role"] == "tool" && $0["messages"]?.arrayValue?.contains { $0["content"]?.stringValue?.contains("News on") == true } == true })
            let result = try #require(searched["messages"]?.arrayValue?.last?["content"]?.stringValue)
            #expect(result.hasPrefix("<data>"), "search results reach the model marked as data")
            #expect(result.contains("https://example.com/one"))
            #expect(!result.contains("javascript:"), "a URL that is not http(s) is dropped")

            // Image: made with the tenant's own key, kept as the job's artifact, paid per image.
            let portrait = try #require(jobs.first { $0["field_name"] == "portrait" })
            #expect(portrait["status"] == "completed", "\(portrait)")
            let imageCall = try #require(portrait["tool_calls"]?.arrayValue?.first)
            #expect(imageCall["tool"] == "image_generation")
            #expect(imageCall["error"] == .null, "\(imageCall)")
            #expect(imageCall["cost_micros"]?.integerValue == 42_000, "one gpt-image-1 image at the catalog's price")
            let images = try await stack.providerRequests(path: "/v1/images/generations")
            #expect(images.count == 1)
            #expect(images.first?.authorization == "Bearer test-provider-key-1", "the tenant's own key, for its own image")
            let portraitID = try #require(portrait["id"]?.stringValue ?? portrait["id"]?.integerValue.map { "\($0)" })
            let artifacts = try #require(try await stack.api.get("/ai-jobs/\(portraitID)/")["artifacts"]?.arrayValue)
            let name = try #require(artifacts.first?["name"]?.stringValue)
            #expect(name.hasPrefix("image-") && name.hasSuffix(".png"), "\(artifacts)")
            let png = try await stack.api.download("/ai-jobs/\(portraitID)/artifacts/\(name)")
            #expect(png.status == 200)
            #expect(png.bytes.prefix(8) == [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A])

            // A field that allows only web search cannot make an image, whatever the model asks.
            let sneaky = try #require(jobs.first { $0["field_name"] == "sneaky" })
            let refused = try #require(sneaky["tool_calls"]?.arrayValue?.first)
            #expect(refused["error"] != .null, "\(refused)")
            #expect(refused["cost_micros"]?.integerValue == 0)

            // Each tool's executors run as a uid of their own: code escaping one tool's jail is
            // not the uid of another's launcher.
            var uids: [String: String] = [:]
            for tool in ["code_interpreter", "web_search", "image_generation", "file_search"] {
                let pid = try #require(try await stack.child("tool:\(tool):1")?.pid, "\(tool)")
                let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
                uids[tool] = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }.map(String.init)
            }
            #expect(Set(uids.values).count == 4, "\(uids)")
            #expect(!uids.values.contains { $0.contains("\t0\t") }, "no executor runs as root: \(uids)")

            // The serve log names no key.
            let log = try String(contentsOfFile: stack.directory + "/serve.log", encoding: .utf8)
            #expect(!log.contains("test-provider-key-1"))
        }
    }

    @Test(
        "file search: uploads are split into passages in the jail on the first search (HTML reduced to text), the best passage reaches the model; the executor's role reads nothing but through a live grant, and a grant reaches one tenant",
        .enabled(if: Self.jailsAvailable, "the executors' jails need user namespaces, which this kernel has turned off")
    )
    func fileSearch() async throws {
        try await TestStack.with { stack in
            try await waitUntil("the file search executor to run") {
                try await stack.child("tool:file_search:1")?.state == .running
            }
            let html = try await stack.api.post("/files/", [
                "name": "guide.html",
                "content": "<html><head><script>var lighthouse = 'steal';</script><style>p{}</style></head><body><p>The lighthouse keeper logs every ship at dawn.</p><!-- lighthouse secret --><p>Unrelated &amp; dull.</p></body></html>",
            ])
            try #require(html.status == 201, "\(html.body)")
            #expect(html["status"] == "pending")
            #expect(try await stack.api.post("/files/", ["name": "notes.md", "content": "# Harbour\n\nBoats rest here."]).status == 201)
            #expect(try await stack.api.post("/files/", ["name": "bad.exe", "media_type": "application/x-msdownload", "content": "MZ"]).status == 422)

            #expect(try await stack.api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
            #expect(try await stack.api.post("/pipelines/leads/fields/", ["name": "Name", "slug": "name", "field_type": "text"]).status == 201)
            let field = try await stack.api.post("/pipelines/leads/fields/", [
                "name": "Docs", "slug": "docs", "field_type": "ai_generated",
                "ai_config": ["prompt": "About {name}. [sim-tool file_search]lighthouse[/sim-tool]", "enable_tools": true, "allowed_tools": ["file_search"], "cache_duration": 0],
            ])
            try #require(field.status == 201, "\(field.body)")
            let record = try await stack.api.post("/pipelines/leads/records/", ["data": ["name": "Ada"]])
            let id = try #require(record["id"]?.integerValue)
            var job: JSONValue = .null
            try await waitUntil("the field's job to finish") {
                job = try await stack.api.get("/ai-jobs/?record_id=\(id)")["results"]?.arrayValue?.first ?? .null
                return ["completed", "failed"].contains(job["status"]?.stringValue ?? "")
            }
            #expect(job["status"] == "completed", "\(job)")
            let call = try #require(job["tool_calls"]?.arrayValue?.first)
            #expect(call["tool"] == "file_search")
            #expect(call["error"] == .null, "\(call)")
            #expect(call["cost_micros"]?.integerValue == 2_500)
            let chats = try await stack.providerRequests().map { try JSONValue.parse(Array($0.body.utf8)) }
            let result = try #require(chats.last?["messages"]?.arrayValue?.last?["content"]?.stringValue)
            #expect(result.contains("The lighthouse keeper logs every ship at dawn."), "\(result)")
            #expect(result.contains("guide.html"))
            #expect(!result.contains("steal") && !result.contains("secret"), "scripts and comments are not text: \(result)")
            let files = try await stack.api.get("/files/")["results"]?.arrayValue ?? []
            #expect(files.allSatisfy { $0["status"] == "indexed" && ($0["passages"]?.integerValue ?? 0) >= 1 }, "\(files)")

            // The executor's role, as the database sees it: no table, and no function without a grant.
            let role = RoleSetup.roles(forDatabase: stack.databaseName).files
            try await stack.withDatabase { client, logger in
                for statement in ["SELECT count(*) FROM tenant_files", "SELECT count(*) FROM file_passages", "SELECT count(*) FROM ai_jobs", "SELECT count(*) FROM file_search_grants"] {
                    await #expect(throws: (any Error).self, "\(statement)") {
                        try await client.withTransaction(logger: logger) { connection in
                            try await connection.query("SET LOCAL ROLE \(unescaped: role)", logger: logger)
                            for try await _ in try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger) {}
                        }
                    }
                }
                await #expect(throws: (any Error).self, "a made-up grant") {
                    try await client.withTransaction(logger: logger) { connection in
                        try await connection.query("SET LOCAL ROLE \(unescaped: role)", logger: logger)
                        for try await _ in try await connection.query("SELECT * FROM oneo_file_search('not-a-grant', 'lighthouse', 5)", logger: logger) {}
                    }
                }
                // A live grant of another tenant finds nothing of this one's.
                var other: Int64 = 0
                for try await id in try await client.query("INSERT INTO tenants (slug, name) VALUES ('other', 'Other') RETURNING id", logger: logger).decode(Int64.self) { other = id }
                try await client.query("INSERT INTO file_search_grants (token_hash, tenant_id, expires_at) VALUES (sha256('other-grant'::bytea), \(other), now() + interval '1 minute')", logger: logger)
                let found = try await client.withTransaction(logger: logger) { connection in
                    try await connection.query("SET LOCAL ROLE \(unescaped: role)", logger: logger)
                    var count: Int64 = -1
                    for try await found in try await connection.query("SELECT count(*) FROM oneo_file_search('other-grant', 'lighthouse', 5)", logger: logger).decode(Int64.self) { count = found }
                    return count
                }
                #expect(found == 0, "another tenant's grant sees none of this tenant's passages")
            }
        }
    }
}

extension JSONValue {
    fileprivate subscript(index: Int) -> JSONValue? {
        guard case .array(let items) = self, items.indices.contains(index) else { return nil }
        return items[index]
    }
}
