import Foundation
import Hummingbird
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import PostgresNIO

/// `POST /api/v1/ai/workflow/` runs a workflow's AI node (the reference's `process_workflow_ai`):
/// `{"workflow_context": {…}, "ai_node_config": {"node_id": "classify_lead", "job_type":
/// "classification", "prompt": "… {workflow_data}", "output_type": "json", …}, "execution_id":
/// "exec_123", "wait_ms": 10000}`. The node becomes a job of its own (no record), run by the
/// tenant's processor like a field's: guarded, fenced, cached, reserved against the budgets.
/// Answers 200 with the result when the job ends within `wait_ms`, else 202 with the job to poll
/// (`GET /ai-jobs/{id}/`). The same execution's node is one job: a workflow engine that retries
/// its call gets the same job back, and a different node config or context under the same
/// execution and node id is refused (409).
struct WorkflowRoutes {
    let database: PostgresClient
    let models: ModelCatalog
    let maxAttempts: Int
    let waiters = WaiterCounts()

    /// The context is tenant data sent whole with every attempt: bounded like a large record.
    static let maximumContextBytes = 256 * 1024
    static let defaultWait = 10_000

    struct Body: Decodable {
        let workflow_context: JSONValue?
        let ai_node_config: JSONValue?
        let execution_id: String?
        let wait_ms: Int?
    }

    struct Answer: ResponseEncodable {
        let execution_id: String
        let node_id: String
        let status: String
        /// The node's output (a string for text, a JSON value otherwise) once completed.
        @ExplicitNull var result: JSONValue?
        @ExplicitNull var error_code: String?
        let error_message: String
        let job: JobResource
    }

    /// A node as the request gives it, checked.
    struct Node {
        let executionID: String
        let nodeID: String
        let jobType: String
        let model: String
        /// What the job row stores: the node's `ai_config` (without `node_id` and `job_type`) and
        /// the context.
        let workflow: JSONValue
    }

    func add(to group: RouterGroup<APIRequestContext>) {
        group.post("ai/workflow") { request, context in
            let caller = try context.require(.create)
            let body = try await request.decodeBody(Body.self, context: context)
            let wait = body.wait_ms ?? Self.defaultWait
            guard (0...GenerateRoutes.longestWait).contains(wait) else { throw APIError.invalid("wait_ms must be 0...\(GenerateRoutes.longestWait)") }
            let node = try Self.node(body, models: self.models, defaultModel: caller.defaultModel)
            let jobID = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection -> JobID in
                try await self.queue(node, caller: caller, on: connection, logger: context.logger)
            }
            if wait > 0, self.waiters.enter(caller.tenant, limit: GenerateRoutes.waitersPerTenant) {
                defer { self.waiters.leave(caller.tenant) }
                try await GenerateRoutes.waitForEnd(of: jobID, tenant: caller.tenant, within: .milliseconds(Int64(wait)), database: self.database, context: context)
            }
            let job = try await self.database.asTenant(caller.tenant, logger: context.logger) { connection in
                try await JobRoutes.load(jobID, tenant: caller.tenant, on: connection, logger: context.logger)
            }
            let completed = job.status == JobStatus.completed.rawValue
            let answer = Answer(
                execution_id: node.executionID, node_id: node.nodeID, status: job.status, result: completed ? job.output_data["content"] : nil,
                error_code: job.error_code, error_message: job.error_message, job: job
            )
            return EditedResponse(status: JobStatus(rawValue: job.status)?.isFinal == true ? .ok : .accepted, response: answer)
        }
    }

    /// Inserts the node's job, or finds the one this execution's node already has.
    private func queue(_ node: Node, caller: Caller, on connection: PostgresConnection, logger: Logger) async throws -> JobID {
        let rows = try await connection.query(
            """
            WITH queued AS (
                INSERT INTO ai_jobs (tenant_id, job_type, field_name, model_name, workflow, record_version, triggered_by, max_attempts, input_data)
                VALUES (\(caller.tenant), \(node.jobType), \(node.nodeID), \(node.model), \(node.workflow), 0, \(caller.tokenName),
                        \(self.maxAttempts), \(JSONValue.object(["execution_id": .string(node.executionID)])))
                ON CONFLICT (tenant_id, (workflow ->> 'execution_id'), (workflow ->> 'node_id')) WHERE workflow IS NOT NULL DO NOTHING
                RETURNING id)
            SELECT id, pg_notify(\(JobChannel.jobsQueued), \(String(caller.tenant.rawValue)))::text FROM queued
            """,
            logger: logger
        )
        for try await (id, _) in rows.decode((JobID, String).self) { return id }
        let existing = try await connection.query(
            """
            SELECT id, workflow = \(node.workflow) AND job_type = \(node.jobType) FROM ai_jobs
            WHERE tenant_id = \(caller.tenant) AND workflow IS NOT NULL
              AND workflow ->> 'execution_id' = \(node.executionID) AND workflow ->> 'node_id' = \(node.nodeID)
            """,
            logger: logger
        )
        for try await (id, same) in existing.decode((JobID, Bool).self) {
            guard same else {
                throw APIError(
                    .conflict, code: "execution_conflict",
                    message: "execution '\(node.executionID)' already ran node '\(node.nodeID)' (job \(id)) with a different config or context; use a new execution_id"
                )
            }
            return id
        }
        throw APIError.internalFailure("the workflow node's job could not be queued")
    }

    /// Checks a request's node: ids, job type, context and config (whose model must have a
    /// price and whose prompt may name the workflow's data, not record fields).
    static func node(_ body: Body, models: ModelCatalog, defaultModel: String) throws(APIError) -> Node {
        guard let executionID = body.execution_id, Self.isIdentifier(executionID, upTo: 128) else {
            throw APIError.invalid("execution_id is required: 1 to 128 letters, digits and '_', '-', '.', ':'")
        }
        guard case .object(var configObject)? = body.ai_node_config else {
            throw APIError.invalid("ai_node_config is required and must be a JSON object with node_id and prompt")
        }
        guard case .string(let nodeID)? = configObject.removeValue(forKey: "node_id"), Self.isIdentifier(nodeID, upTo: 100) else {
            throw APIError.invalid("ai_node_config.node_id is required: 1 to 100 letters, digits and '_', '-', '.', ':'")
        }
        let jobType: String
        switch configObject.removeValue(forKey: "job_type") {
        case nil, .null?: jobType = "workflow"
        case .string(let text)? where Self.isJobType(text): jobType = text
        default: throw APIError.invalid("ai_node_config.job_type must be 1 to 50 lower-case letters, digits and '_', starting with a letter")
        }
        guard case .object(let context)? = body.workflow_context else {
            throw APIError.invalid("workflow_context is required and must be a JSON object")
        }
        let contextValue = JSONValue.object(context)
        if let path = contextValue.pathOfUnstorableText(under: "workflow_context") {
            throw APIError.invalid("\(path) contains a NUL character (U+0000), which cannot be stored")
        }
        let contextBytes = (try? JSONEncoder().encode(contextValue).count) ?? Int.max
        guard contextBytes <= Self.maximumContextBytes else {
            throw APIError.invalid("workflow_context is \(contextBytes) bytes of JSON; the limit is \(Self.maximumContextBytes)")
        }
        let config: AIFieldConfig
        do {
            config = try AIFieldConfig(validating: .object(configObject))
        } catch {
            throw APIError.invalid("ai_node_config: \(error.description)")
        }
        let model = try FieldValidator.model(of: config, models: models, defaultModel: defaultModel, key: "ai_node_config")
        let template: PromptTemplate
        do {
            template = try PromptTemplate(parsing: config.prompt)
        } catch {
            throw APIError.invalid("ai_node_config.prompt: \(error.description)")
        }
        for segment in template.segments {
            switch segment {
            case .field(let path, let position):
                throw APIError.invalid(
                    "ai_node_config.prompt: placeholder '{\(path.joined(separator: "."))}' at position \(position) names a record field; a workflow node sees its context as {workflow_data}"
                )
            case .allFields(let position):
                throw APIError.invalid("ai_node_config.prompt: '{*}' at position \(position) stands for a record's fields; a workflow node sees its context as {workflow_data}")
            case .literal, .builtin:
                continue
            }
        }
        var stored = configObject
        stored["model"] = .string(model)
        return Node(
            executionID: executionID, nodeID: nodeID, jobType: jobType, model: model,
            workflow: ["execution_id": .string(executionID), "node_id": .string(nodeID), "config": .object(stored), "context": contextValue]
        )
    }

    static func isIdentifier(_ text: String, upTo bytes: Int) -> Bool {
        !text.isEmpty && text.utf8.count <= bytes
            && text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x41 && $0 <= 0x5A) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F || $0 == 0x2D || $0 == 0x2E || $0 == 0x3A }
    }

    static func isJobType(_ text: String) -> Bool {
        guard let first = text.utf8.first, first >= 0x61, first <= 0x7A, text.utf8.count <= 50 else { return false }
        return text.utf8.allSatisfy { ($0 >= 0x30 && $0 <= 0x39) || ($0 >= 0x61 && $0 <= 0x7A) || $0 == 0x5F }
    }
}
