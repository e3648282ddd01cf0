/// What one `oneo-ai bench` run does.
public struct BenchmarkSettings: Sendable {
    public var tenants: Int
    public var recordsPerTenant: Int
    public var latencyMilliseconds: Int
    /// Jobs each tenant's processor runs at once (serve's --processor-concurrency), and as many
    /// HTTP clients writing records and pgbench clients for the ceiling.
    public var concurrency: Int
    public var pgbenchSeconds: Int
    /// Also run a phase paced at half the peak rate, for latency at a sustainable load.
    public var pacedPhase: Bool
    public var directory: String
    public var binDirectory: String

    public init(tenants: Int, recordsPerTenant: Int, latencyMilliseconds: Int, concurrency: Int, pgbenchSeconds: Int, pacedPhase: Bool, directory: String, binDirectory: String) {
        self.tenants = tenants
        self.recordsPerTenant = recordsPerTenant
        self.latencyMilliseconds = latencyMilliseconds
        self.concurrency = concurrency
        self.pgbenchSeconds = pgbenchSeconds
        self.pacedPhase = pacedPhase
        self.directory = directory
        self.binDirectory = binDirectory
    }
}
