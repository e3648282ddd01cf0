import Foundation
import OneoTesting
import OneoWire
import PostgresNIO
import StackControl
import Testing

/// The workflow AI node (`POST /api/v1/ai/workflow/`): a job with no record, run by the tenant's
/// processor with the workflow's context fenced and guarded, answered with its result, found
/// again by its execution, and bounded by the budgets like a field's job.
@Suite("workflow node", .serialized, .timeLimit(.minutes(3)))
struct WorkflowNodeTests {
    static let node: JSONValue = [
        "node_id": "classify_lead", "job_type": "classification", "model": "gpt-4o-mini",
        "prompt": "Classify this lead as Hot, Warm, or Cold based on: {workflow_data}", "output_type": "json", "temperature": 0.1,
    ]

    @Test("the node runs with its context fenced and its sensitive keys withheld; the answer carries the JSON result; the same execution is the same job")
    func runsAndAnswers() async throws {
        try await TestStack.with { stack in
            let context: JSONValue = ["lead_score": 85, "engagement": "high", "ssn": "123-45-6789"]
            let answer = try await stack.api.post("/ai/workflow/", ["workflow_context": context, "ai_node_config": Self.node, "execution_id": "workflow_123"])
            try #require(answer.status == 200, "\(answer.body)")
            #expect(answer["status"] == "completed")
            #expect(answer["node_id"] == "classify_lead")
            #expect(answer["result"]?["summary"]?.stringValue?.isEmpty == false, "the simulator's JSON reply: \(answer.body)")
            let job = try #require(answer["job"])
            #expect(job["record_id"] == .null)
            #expect(job["pipeline"] == .null)
            #expect(job["job_type"] == "classification")
            #expect(job["execution_id"] == "workflow_123")
            #expect((job["cost_micros"]?.integerValue ?? 0) > 0)

            let requests = try await stack.providerRequests().map { try JSONValue.parse(Array($0.body.utf8)) }
            try #require(requests.count == 1)
            let prompt = requests[0]["messages"]?.arrayValue?.last?["content"]?.stringValue ?? ""
            #expect(prompt.contains("\"lead_score\""), "the context reaches the model: \(prompt)")
            #expect(prompt.contains("<data>"), "fenced as data")
            #expect(!prompt.contains("123-45-6789"), "a sensitive key of the context is withheld")
            #expect(requests[0]["response_format"]?["type"] == "json_object")

            // Usage is charged to the node, with its job type as the operation.
            let usage = try await stack.withDatabase { database, logger -> [(String, String, Bool)] in
                var rows: [(String, String, Bool)] = []
                for try await row in try await database.query("SELECT operation_type, field_name, pipeline_id IS NULL FROM ai_usage", logger: logger).decode((String, String, Bool).self) {
                    rows.append(row)
                }
                return rows
            }
            #expect(usage.count == 1)
            #expect(usage.first?.0 == "classification" && usage.first?.1 == "classify_lead" && usage.first?.2 == true)

            // A workflow engine retrying its call gets the same job back, and no second call.
            let again = try await stack.api.post("/ai/workflow/", ["workflow_context": context, "ai_node_config": Self.node, "execution_id": "workflow_123"])
            #expect(again.status == 200)
            #expect(again["job"]?["id"] == job["id"])
            #expect(try await stack.providerRequests().count == 1)
            // The same execution's node with another context is a conflict, not a silent rerun.
            let changed = try await stack.api.post("/ai/workflow/", ["workflow_context": ["lead_score": 10], "ai_node_config": Self.node, "execution_id": "workflow_123"])
            #expect(changed.status == 409, "\(changed.body)")
            #expect(changed["code"] == "execution_conflict")

            // Without waiting: 202 with the job, which the jobs API shows completing.
            let queued = try await stack.api.post("/ai/workflow/", ["workflow_context": context, "ai_node_config": Self.node, "execution_id": "workflow_124", "wait_ms": 0])
            #expect(queued.status == 202 || queued.status == 200, "\(queued.body)")
            let id = try #require(queued["job"]?["id"]?.stringValue ?? queued["job"]?["id"]?.integerValue.map { "\($0)" })
            try await waitUntil("the second execution's node to complete") {
                try await stack.api.get("/ai-jobs/\(id)/")["status"] == "completed"
            }
            let listed = try await stack.api.get("/ai-jobs/?job_type=classification")
            #expect(listed["count"]?.integerValue == 2)
            #expect(try await stack.api.get("/ai-jobs/\(id)/")["ai_config"]?["prompt"] == Self.node["prompt"])
        }
    }

    @Test("bad requests are refused with the reason: missing ids, record placeholders, unpriced models, oversized context")
    func refusals() async throws {
        try await TestStack.with { stack in
            func post(_ body: JSONValue) async throws -> JSONClient.Response { try await stack.api.post("/ai/workflow/", body) }
            func with(_ key: String, _ value: JSONValue?) -> JSONValue {
                var object = Self.node.objectValue ?? [:]
                object[key] = value
                return .object(object)
            }
            var node = Self.node
            #expect(try await post(["workflow_context": [:], "ai_node_config": node]).status == 422, "no execution_id")
            #expect(try await post(["workflow_context": [:], "ai_node_config": node, "execution_id": "a b"]).status == 422, "a space in execution_id")
            #expect(try await post(["ai_node_config": node, "execution_id": "x"]).status == 422, "no context")
            #expect(try await post(["workflow_context": [1, 2], "ai_node_config": node, "execution_id": "x"]).status == 422, "a context that is no object")
            node = with("prompt", "Classify {company}")
            let field = try await post(["workflow_context": [:], "ai_node_config": node, "execution_id": "x"])
            #expect(field.status == 422)
            #expect(field["message"]?.stringValue?.contains("{workflow_data}") == true, "\(field.body)")
            node = with("model", "no-such-model")
            #expect(try await post(["workflow_context": [:], "ai_node_config": node, "execution_id": "x"]).status == 422, "a model with no price")
            node = with("node_id", nil)
            #expect(try await post(["workflow_context": [:], "ai_node_config": node, "execution_id": "x"]).status == 422, "no node_id")
            node = with("surprise", true)
            let unknown = try await post(["workflow_context": [:], "ai_node_config": node, "execution_id": "x"])
            #expect(unknown.status == 422)
            #expect(unknown["message"]?.stringValue?.contains("surprise") == true)
            let big = JSONValue.string(String(repeating: "a", count: 300_000))
            #expect(try await post(["workflow_context": ["notes": big], "ai_node_config": Self.node, "execution_id": "x"]).status == 422, "a context over 256 KiB")
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs") == 0)
            #expect(try await stack.providerRequests().isEmpty)
        }
    }

    @Test("a tenant with no budget left: the node fails budget_exceeded with no provider call; a retry after set-budget completes")
    func budgetBound() async throws {
        try await TestStack.with { stack in
            try await stack.cli(["tenant", "set-budget", stack.tenant, "--monthly-cents", "0"])
            let answer = try await stack.api.post("/ai/workflow/", ["workflow_context": ["lead_score": 85], "ai_node_config": Self.node, "execution_id": "budgeted"])
            try #require(answer.status == 200, "\(answer.body)")
            #expect(answer["status"] == "failed")
            #expect(answer["error_code"] == "budget_exceeded")
            #expect(try await stack.providerRequests().isEmpty)
            try await stack.cli(["tenant", "set-budget", stack.tenant, "--monthly-cents", "100"])
            let id = try #require(answer["job"]?["id"]?.stringValue ?? answer["job"]?["id"]?.integerValue.map { "\($0)" })
            #expect(try await stack.api.post("/ai-jobs/\(id)/retry/", [:]).status < 300)
            try await waitUntil("the retried node to complete") {
                try await stack.api.get("/ai-jobs/\(id)/")["status"] == "completed"
            }
            #expect(try await stack.providerRequests().count == 1)
        }
    }
}
