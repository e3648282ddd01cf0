import OneoWire
import OneoStore
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

/// Everything about how one child is started, written down in one place: its role and tenant,
/// its program and arguments, its (small, explicit) environment, and whether it speaks our
/// protocol on fd 3. The bootstrap frame is not here: it carries the child's pid and is sent once
/// the child exists.
struct ChildSpec: Sendable {
    enum Role: String, Sendable {
        case api, qmgr, processor, postgres, redis, setup, tool
    }

    var role: Role
    /// The name the child goes by in logs and status: `api`, `processor:acme`, `postgres`.
    var name: String
    var tenant: TenantID?
    var executable: String
    var arguments: [String]
    var environment: [String: String]
    /// Our own programs get a socketpair end as fd 3; PostgreSQL and Redis do not.
    var wantsChannel: Bool

    init(role: Role, name: String, tenant: TenantID? = nil, executable: String, arguments: [String], environment: [String: String] = ChildSpec.baseEnvironment(), wantsChannel: Bool) {
        self.role = role
        self.name = name
        self.tenant = tenant
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.wantsChannel = wantsChannel
    }

    /// A program that is not ours, so cannot arm its own parent-death signal: `setpriv` arms it
    /// (after dropping to `account`, if any) and execs the program.
    static func foreign(role: Role, name: String, program: String, arguments: [String], account: ProcessAccount?, deathSignal: String) -> ChildSpec {
        var wrapper = ["--pdeathsig", deathSignal, "--no-new-privs"]
        if let account { wrapper = account.setprivArguments + ["--pdeathsig", deathSignal] }
        return ChildSpec(role: role, name: name, executable: ProcessAccount.setpriv, arguments: wrapper + ["--", program] + arguments, wantsChannel: false)
    }

    /// Children inherit nothing from our environment but these: no DATABASE_URL, no secrets.
    static func baseEnvironment() -> [String: String] {
        let inherited = ["PATH", "LANG", "TZ", "ONEO_LOG_LEVEL"]
        var environment: [String: String] = ["LANG": "C.UTF-8", "PATH": "/usr/local/bin:/usr/bin:/bin"]
        for key in inherited {
            if let value = getenv(key) { environment[key] = String(cString: value) }
        }
        return environment
    }
}
