/// A job's state, as stored in `ai_jobs.status` (the CHECK constraint lists the same five).
/// pending → processing → completed | failed | cancelled; processing → pending on a retry or a
/// release; pending → cancelled when a newer change supersedes it.
public enum JobStatus: String, Sendable, Hashable, Codable, CaseIterable {
    case pending, processing, completed, failed, cancelled

    /// No further change happens to a job in this state.
    public var isFinal: Bool { self == .completed || self == .failed || self == .cancelled }
}

/// Why an attempt ended without a result, as stored in `ai_jobs.error_code`. The engine's own
/// codes are here; a provider's classified failures (`rate_limited`, `provider_error`, …) pass
/// through as the processor named them.
public enum JobFailureCode: String, Sendable, Hashable, CaseIterable {
    /// The record was deleted after the job was queued.
    case recordMissing = "record_missing"
    /// The field's template no longer parses.
    case badTemplate = "bad_template"
    /// The lease ran out: the attempt's worker hung or vanished unseen.
    case leaseExpired = "lease_expired"
    /// The processor running the attempt stopped (or its connection closed) before reporting.
    case processorStopped = "processor_stopped"
    /// The attempt ran past `queue.attempt_deadline_ms`; it was stopped and queued again.
    case attemptDeadline = "attempt_deadline"
    /// Cancelled by an operator or through the API.
    case cancelled
    /// The job's model has no price in the catalog: it is never called.
    case modelUnpriced = "model_unpriced"
    /// A budget that applies (the field's, the tenant's month) has no room for the call's bound:
    /// no call was made. Retry it after the budget is raised.
    case budgetExceeded = "budget_exceeded"
    /// The budget ledger could not be written: no call was made; retried like any transient error.
    case budgetUnavailable = "budget_unavailable"
    /// An error of ours; the processor's log has it.
    case `internal`
}
