public import OneoWire
/// The NOTIFY channels through which writers wake the engine. One channel for every tenant's
/// jobs, with the tenant id as payload, heard by the queue manager alone: PostgreSQL signals every
/// listening backend on each NOTIFY, and each runs a transaction to read the queue, so a listener
/// per processor would cost a hundred transactions per job with a hundred tenants.
public enum JobChannel {
    /// Carries the id of the tenant whose jobs were queued.
    public static let jobsQueued = "oneo_jobs"
    /// Says that the set of tenants or their settings changed (the queue manager relays it to
    /// the supervisor).
    public static let tenantsChanged = "oneo_tenants"
    /// Carries `tenant:job:attempt` of a processing job that was cancelled (sent by the
    /// `oneo_cancel_jobs_of` function), so the queue manager aborts its provider call.
    public static let jobsCancelled = "oneo_jobs_cancelled"
}
