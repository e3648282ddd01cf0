public import OneoCore

/// A job this processor holds a lease on, with the record it was claimed with. `attempt` and
/// `worker` fence every later write: a processor whose lease was taken over cannot commit.
public struct ClaimedJob: Sendable {
    public let id: JobID
    public let pipeline: PipelineID
    public let record: RecordID
    public let fieldName: String
    public let model: String
    public let config: AIFieldConfig
    public let attempt: Int
    public let maxAttempts: Int
    public let triggeredBy: String?
    /// nil when the record was deleted after the job was queued.
    public let recordData: [String: JSONValue]?
    public let pipelineName: String
    /// Tells whether a cached copy of the pipeline's fields is current.
    public let fieldsVersion: Int64
    /// The tenant's own sensitive names as of the claim: a name added by an operator applies
    /// from the next claim on, without restarting the processor.
    public let tenantSensitiveNames: [String]
}
