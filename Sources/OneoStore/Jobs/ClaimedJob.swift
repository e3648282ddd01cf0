public import OneoWire
/// A job attempt the queue manager holds a lease on, with the record it was claimed with.
/// (tenant, id, attempt) and the queue manager's worker fence every later write.
public struct ClaimedJob: Sendable {
    public let tenant: TenantID
    public let id: JobID
    public let pipeline: PipelineID
    public let record: RecordID
    public let fieldName: String
    public let model: String
    /// The field version's config as stored; `config` validates it.
    public let storedConfig: JSONValue
    public let attempt: Int
    public let maxAttempts: Int
    public let triggeredBy: String?
    /// nil when the record was deleted after the job was queued.
    public let recordData: [String: JSONValue]?
    public let pipelineName: String
    /// Tells whether a processor's copy of the pipeline's fields is current.
    public let fieldsVersion: Int64
    /// The tenant's own sensitive names as of the claim: a name added by an operator applies
    /// from the next claim on, without restarting anything.
    public let tenantSensitiveNames: [String]
    /// The tenant's monthly budget as of the claim (nil: none).
    public let tenantMonthlyBudget: Microdollars?
    /// A workflow node's job: no record or pipeline (both 0), its config and context its own.
    public var workflow: WorkflowNode? = nil
    /// Whether the tenant lets its fields call tools (as of the claim).
    public var tenantToolsEnabled: Bool = true
    /// Set when the job is handed out and a budget applies: what its reservations are checked
    /// against and bounded by.
    public var budget: Budget? = nil

    /// The tools the attempt was granted (its ticket's): their calls are priced, others not.
    public var tools: [String] = []

    public struct Budget: Sendable {
        /// The field's monthly budget (nil: none; the tenant's is read live at each reservation).
        public let fieldLimit: Microdollars?
        /// The output limit the job's calls are sent with (`max_tokens`).
        public let outputLimit: Int
        /// What the tool calls one model reply may ask for can cost at most: reserved with the
        /// call that may ask for them.
        public var toolFeesPerCall: Microdollars = .zero

        public init(fieldLimit: Microdollars?, outputLimit: Int) {
            self.fieldLimit = fieldLimit
            self.outputLimit = outputLimit
        }
    }

    public var config: Result<AIFieldConfig, FieldConfigError> {
        Result { () throws(FieldConfigError) in try AIFieldConfig(validating: self.storedConfig, stored: true) }
    }

    public var attemptReference: JobQueue.Attempt {
        JobQueue.Attempt(tenant: self.tenant, job: self.id, attempt: self.attempt)
    }

    /// The budget of this job's field: its own `budget_limit_cents`, else the system default
    /// (`budgets.field_limit_cents`, 0 for none).
    public func fieldBudget(config: AIFieldConfig, defaultCents: Int) -> Microdollars? {
        if let cents = config.budgetLimitCents { return .cents(cents) }
        return defaultCents > 0 ? .cents(Int64(defaultCents)) : nil
    }

    /// The frame that sends this attempt to its tenant's processor.
    public func order(config: AIFieldConfig, budgeted: Bool) -> JobOrder {
        var order = JobOrder(
            job: self.id, attempt: self.attempt, maxAttempts: self.maxAttempts, pipeline: self.pipeline, pipelineName: self.pipelineName,
            fieldsVersion: self.fieldsVersion, record: self.record, fieldName: self.fieldName, model: self.model, config: config,
            triggeredBy: self.triggeredBy, recordData: self.recordData, tenantSensitiveNames: self.tenantSensitiveNames
        )
        order.budgeted = budgeted
        order.workflow = self.workflow
        return order
    }
}
