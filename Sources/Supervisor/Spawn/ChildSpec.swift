import OneoCore

/// Everything about how one child is started, written down in one place: its program and
/// arguments, its (small, explicit) environment, and the bootstrap frame it reads from fd 3.
struct ChildSpec: Sendable {
    enum Role: String, Sendable {
        case api, processor, postgres, redis, setup
    }

    var role: Role
    /// The name the child goes by in logs and status: `api`, `processor:acme`, `postgres`.
    var name: String
    var executable: String
    var arguments: [String]
    var environment: [String: String]
    /// When set, the child gets a socketpair end as fd 3 and this as its first frame.
    var bootstrap: ChildBootstrap?

    init(role: Role, name: String, executable: String, arguments: [String], environment: [String: String] = ChildSpec.baseEnvironment(), bootstrap: ChildBootstrap? = nil) {
        self.role = role
        self.name = name
        self.executable = executable
        self.arguments = arguments
        self.environment = environment
        self.bootstrap = bootstrap
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

#if canImport(Glibc)
import Glibc
#endif
