/// The frames between the queue manager and one tenant's processor, over the socketpair the
/// supervisor made for them. The queue manager sends work; the processor sends back what became
/// of it. A job's (id, attempt) is the request id: every report names the order it answers, and
/// the queue manager accepts a report only for an order it sent on that same socket.
public enum QueueMessage: Sendable, Equatable, Codable {
    /// A pipeline's fields at a version, sent before the first job that needs them: the renderer
    /// is built from them, and each (pipeline, version) crosses the socket once.
    case fields(PipelineFields)
    /// One job attempt to run.
    case job(JobOrder)
    /// Stop working on this attempt (it was cancelled, or passed its deadline): abort its provider
    /// call and report it `failed` with code `cancelled`. Its row has already moved on, so the
    /// report changes nothing there; it frees the processor's room.
    case cancel(job: JobID, attempt: Int)
    /// The answer to a processor's `reserve`: whether the call it bounded may be made.
    case budget(BudgetAnswer)

    private enum CodingKeys: String, CodingKey { case type, fields, job, attempt, budget }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "fields": self = .fields(try container.decode(PipelineFields.self, forKey: .fields))
        case "job": self = .job(try container.decode(JobOrder.self, forKey: .job))
        case "cancel": self = .cancel(job: try container.decode(JobID.self, forKey: .job), attempt: try container.decode(Int.self, forKey: .attempt))
        case "budget": self = .budget(try container.decode(BudgetAnswer.self, forKey: .budget))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown queue frame \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .fields(let fields):
            try container.encode("fields", forKey: .type)
            try container.encode(fields, forKey: .fields)
        case .job(let order):
            try container.encode("job", forKey: .type)
            try container.encode(order, forKey: .job)
        case .cancel(let job, let attempt):
            try container.encode("cancel", forKey: .type)
            try container.encode(job, forKey: .job)
            try container.encode(attempt, forKey: .attempt)
        case .budget(let answer):
            try container.encode("budget", forKey: .type)
            try container.encode(answer, forKey: .budget)
        }
    }
}

/// What a processor tells the queue manager.
public enum ProcessorReport: Sendable, Equatable, Codable {
    case completed(JobCompletion)
    case failed(JobFailure)
    /// The processor did not start this attempt (it is draining, or full): it goes back to the
    /// queue without spending an attempt.
    case declined(job: JobID, attempt: Int)
    /// The processor is draining: send it nothing more.
    case draining
    /// Before a provider call of a budgeted job: reserve the call's bound; answered by `budget`.
    case reserve(BudgetRequest)

    private enum CodingKeys: String, CodingKey { case type, completed, failed, job, attempt, reserve }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        switch try container.decode(String.self, forKey: .type) {
        case "completed": self = .completed(try container.decode(JobCompletion.self, forKey: .completed))
        case "failed": self = .failed(try container.decode(JobFailure.self, forKey: .failed))
        case "declined": self = .declined(job: try container.decode(JobID.self, forKey: .job), attempt: try container.decode(Int.self, forKey: .attempt))
        case "draining": self = .draining
        case "reserve": self = .reserve(try container.decode(BudgetRequest.self, forKey: .reserve))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .type, in: container, debugDescription: "unknown processor frame \(other)")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .completed(let completion):
            try container.encode("completed", forKey: .type)
            try container.encode(completion, forKey: .completed)
        case .failed(let failure):
            try container.encode("failed", forKey: .type)
            try container.encode(failure, forKey: .failed)
        case .declined(let job, let attempt):
            try container.encode("declined", forKey: .type)
            try container.encode(job, forKey: .job)
            try container.encode(attempt, forKey: .attempt)
        case .draining:
            try container.encode("draining", forKey: .type)
        case .reserve(let request):
            try container.encode("reserve", forKey: .type)
            try container.encode(request, forKey: .reserve)
        }
    }
}

/// A pipeline's field list at one version.
public struct PipelineFields: Sendable, Equatable, Codable {
    public var pipeline: PipelineID
    public var version: Int64
    public var fields: [PipelineField]

    public init(pipeline: PipelineID, version: Int64, fields: [PipelineField]) {
        self.pipeline = pipeline
        self.version = version
        self.fields = fields
    }
}

/// A workflow node's job (the reference's `process_workflow_ai`): the node's config is the
/// order's `config`, its id the order's `fieldName`.
public struct WorkflowNode: Sendable, Equatable, Codable {
    /// The workflow run that asked; with the node id it names the job.
    public var executionID: String
    /// The reference's `job_type` (`classification`, …): the usage rows' operation.
    public var jobType: String
    /// The workflow's context, a JSON object: tenant data, fenced and guarded like a record's.
    public var context: JSONValue

    public init(executionID: String, jobType: String, context: JSONValue) {
        self.executionID = executionID
        self.jobType = jobType
        self.context = context
    }
}

/// One attempt of one job, with everything the processor needs to run it: the record as claimed,
/// the field's config, and the tenant's sensitive names as of the claim.
public struct JobOrder: Sendable, Equatable, Codable {
    public var job: JobID
    public var attempt: Int
    public var maxAttempts: Int
    public var pipeline: PipelineID
    public var pipelineName: String
    /// The version of the pipeline's fields this job is rendered with (sent before as `fields`).
    public var fieldsVersion: Int64
    public var record: RecordID
    public var fieldName: String
    public var model: String
    public var config: AIFieldConfig
    public var triggeredBy: String?
    /// nil when the record was deleted after the job was queued.
    public var recordData: [String: JSONValue]?
    public var tenantSensitiveNames: [String]
    /// A budget applies (the field's, the tenant's month, or the system default): every provider
    /// call of this attempt is reserved first (`reserve`), and made only when granted.
    public var budgeted: Bool = false
    /// Set for a workflow node's job: it has no record or pipeline (`record` and `pipeline` are
    /// 0, `recordData` empty) and its prompt sees the workflow's context as `{workflow_data}`.
    public var workflow: WorkflowNode? = nil
    /// Set when the field has tools on: the tools it may call, signed by the queue manager.
    public var toolTicket: ToolTicket? = nil

    public init(
        job: JobID, attempt: Int, maxAttempts: Int, pipeline: PipelineID, pipelineName: String, fieldsVersion: Int64,
        record: RecordID, fieldName: String, model: String, config: AIFieldConfig, triggeredBy: String?,
        recordData: [String: JSONValue]?, tenantSensitiveNames: [String]
    ) {
        self.job = job
        self.attempt = attempt
        self.maxAttempts = maxAttempts
        self.pipeline = pipeline
        self.pipelineName = pipelineName
        self.fieldsVersion = fieldsVersion
        self.record = record
        self.fieldName = fieldName
        self.model = model
        self.config = config
        self.triggeredBy = triggeredBy
        self.recordData = recordData
        self.tenantSensitiveNames = tenantSensitiveNames
    }
}

/// A finished provider call. The cost is not here: the queue manager prices the tokens itself.
public struct JobCompletion: Sendable, Equatable, Codable {
    public var job: JobID
    public var attempt: Int
    public var value: JSONValue
    /// The prompt's guard audit: counts and field names, never values.
    public var audit: JSONValue
    public var promptTokens: Int
    /// Of the prompt tokens, those served from the provider's prompt cache.
    public var cachedTokens: Int
    public var completionTokens: Int
    public var milliseconds: Int
    /// Answered from the tenant's result cache (or an identical request in flight): no call, no cost.
    public var cacheHit: Bool = false
    /// The tool calls the model made, in order (the queue manager prices them).
    public var toolCalls: [ToolCallRecord] = []
    /// Files the tools made, kept with the job.
    public var artifacts: [JobArtifact] = []

    public init(job: JobID, attempt: Int, value: JSONValue, audit: JSONValue, promptTokens: Int, cachedTokens: Int = 0, completionTokens: Int, milliseconds: Int) {
        self.job = job
        self.attempt = attempt
        self.value = value
        self.audit = audit
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.completionTokens = completionTokens
        self.milliseconds = milliseconds
    }
}

/// An attempt that did not complete, classified. A retryable one goes back to the queue (the
/// queue manager picks the delay: its backoff, or the provider's `Retry-After` if later); a
/// permanent one fails the job now.
public struct JobFailure: Sendable, Equatable, Codable {
    public var job: JobID
    public var attempt: Int
    public var code: String
    public var message: String
    public var retryable: Bool
    /// The provider's own `Retry-After`, when it gave one the processor did not wait out.
    public var retryAfterMilliseconds: Int?
    /// Calls the processor retried in place before giving up on this attempt.
    public var providerRetries: Int
    /// Tokens of calls the provider answered (and bills) although the attempt failed: a typed
    /// reply that did not fit, a reply cut off by the limit. Absent when nothing was billed.
    public var usage: TokenUsage?
    /// A call may have been billed for an amount nobody knows (a timeout after the request went
    /// out, a reply cut off, one without usage): the attempt is charged its whole reservation.
    public var unmetered: Bool = false
    /// The tool calls made before it failed: those that ran are paid for like a completion's.
    public var toolCalls: [ToolCallRecord] = []

    public init(job: JobID, attempt: Int, code: String, message: String, retryable: Bool, retryAfterMilliseconds: Int? = nil, providerRetries: Int = 0) {
        self.job = job
        self.attempt = attempt
        self.code = code
        self.message = message
        self.retryable = retryable
        self.retryAfterMilliseconds = retryAfterMilliseconds
        self.providerRetries = providerRetries
    }
}

/// Tokens a provider reported for a call.
public struct TokenUsage: Sendable, Hashable, Codable {
    public var promptTokens: Int
    public var cachedTokens: Int
    public var completionTokens: Int

    public init(promptTokens: Int, cachedTokens: Int, completionTokens: Int) {
        self.promptTokens = promptTokens
        self.cachedTokens = cachedTokens
        self.completionTokens = completionTokens
    }

    /// Both calls' tokens together (a tool loop's rounds, a repair).
    public func adding(_ other: TokenUsage) -> TokenUsage {
        TokenUsage(
            promptTokens: self.promptTokens + other.promptTokens, cachedTokens: self.cachedTokens + other.cachedTokens,
            completionTokens: self.completionTokens + other.completionTokens
        )
    }
}

/// A processor's request to reserve one provider call's bound before making it. `call` numbers
/// the attempt's calls (1, 2, …) and is echoed by the answer.
public struct BudgetRequest: Sendable, Equatable, Codable {
    public var job: JobID
    public var attempt: Int
    public var call: Int
    public var bound: CallBound

    public init(job: JobID, attempt: Int, call: Int, bound: CallBound) {
        self.job = job
        self.attempt = attempt
        self.call = call
        self.bound = bound
    }
}

/// The queue manager's answer to a `BudgetRequest`. Refused: `code` says why (`budget_exceeded`
/// with the budget and its figures in `message`, or `budget_unavailable` when the ledger could
/// not be written), and no call may be made.
public struct BudgetAnswer: Sendable, Equatable, Codable {
    public var job: JobID
    public var attempt: Int
    public var call: Int
    public var granted: Bool
    public var code: String?
    public var message: String?

    public init(job: JobID, attempt: Int, call: Int, granted: Bool, code: String? = nil, message: String? = nil) {
        self.job = job
        self.attempt = attempt
        self.call = call
        self.granted = granted
        self.code = code
        self.message = message
    }
}
