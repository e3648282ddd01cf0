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

    public var config: Result<AIFieldConfig, FieldConfigError> {
        Result { () throws(FieldConfigError) in try AIFieldConfig(validating: self.storedConfig, stored: true) }
    }

    public var attemptReference: JobQueue.Attempt {
        JobQueue.Attempt(tenant: self.tenant, job: self.id, attempt: self.attempt)
    }

    /// The frame that sends this attempt to its tenant's processor.
    public func order(config: AIFieldConfig) -> JobOrder {
        JobOrder(
            job: self.id, attempt: self.attempt, maxAttempts: self.maxAttempts, pipeline: self.pipeline, pipelineName: self.pipelineName,
            fieldsVersion: self.fieldsVersion, record: self.record, fieldName: self.fieldName, model: self.model, config: config,
            triggeredBy: self.triggeredBy, recordData: self.recordData, tenantSensitiveNames: self.tenantSensitiveNames
        )
    }
}
