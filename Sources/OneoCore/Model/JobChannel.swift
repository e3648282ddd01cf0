/// The NOTIFY channels through which writers wake processors.
public enum JobChannel {
    /// Wakes the processor of one tenant when its jobs are queued.
    public static func name(for tenant: TenantID) -> String { "oneo_jobs_\(tenant)" }
    /// Tells supervisors that the set of tenants or their settings changed.
    public static let tenantsChanged = "oneo_tenants"
}
