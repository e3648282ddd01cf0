/// A tool's sandbox as `sandbox/<tool>.policy` states it: every layer, each rule with the reason
/// it is there. The executor parses it at start and builds the jail and the seccomp filter from
/// this value alone, so what a reviewer reads is what runs.
public struct SandboxPolicy: Sendable, Equatable {
    public enum Namespace: String, Sendable, CaseIterable {
        case user, pid, net, mount, ipc, uts
    }

    public struct Mount: Sendable, Equatable {
        public enum Kind: String, Sendable, CaseIterable {
            case tmpfs
            case tmpfsReadOnly = "tmpfs-ro"
            case bindReadOnly = "bind-ro"
            case bindReadWrite = "bind-rw"
            case symlink
            case directory
            case device
        }

        public let kind: Kind
        /// The path inside the jail.
        public let target: String
        /// The host path of a bind mount, or a symlink's text.
        public let source: String?
        /// A tmpfs's options (`size=32m,mode=0700`).
        public let options: String?
        public let why: String
    }

    public struct Limit: Sendable, Equatable {
        public enum Resource: String, Sendable, CaseIterable {
            case cpu, `as`, nproc, fsize, nofile, core, stack, memlock, msgqueue, locks
        }

        public let resource: Resource
        public let value: UInt64
        public let why: String
    }

    public enum Action: Sendable, Equatable, CustomStringConvertible {
        case allow
        case errno(name: String, value: Int32)
        case killProcess
        case log

        public var description: String {
            switch self {
            case .allow: "allow"
            case .errno(let name, _): "errno \(name)"
            case .killProcess: "kill-process"
            case .log: "log"
            }
        }
    }

    /// One condition on a system call's argument: `argN OP VALUE`, or `argN & MASK == VALUE`.
    public struct Condition: Sendable, Equatable, CustomStringConvertible {
        public enum Operator: String, Sendable, CaseIterable {
            case equal = "==", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
            case maskedEqual = "&"
        }

        public let argument: Int
        public let op: Operator
        public let value: UInt64
        /// Only for `maskedEqual`.
        public let mask: UInt64
        /// As written, for `sandbox show`.
        public let text: String

        public var description: String { self.text }
    }

    public struct Rule: Sendable, Equatable {
        public let action: Action
        public let syscall: String
        public let number: Int32
        public let conditions: [Condition]
        public let why: String
        public let line: Int
    }

    public var tool: String = ""
    /// The program the jail runs, with its first arguments.
    public var program: [String] = []
    public var namespaces: [Namespace] = []
    public var hostname: String?
    public var uid: UInt32 = 1000
    public var gid: UInt32 = 1000
    public var mounts: [Mount] = []
    public var workdir: String?
    public var limits: [Limit] = []
    /// The wall-clock bound of one run, in milliseconds: the jail is killed at it.
    public var timeoutMilliseconds: Int = 10_000
    /// The most bytes of stdout and of stderr kept; past it the run is killed.
    public var outputBytes: Int = 65_536
    public var defaultAction: Action = .killProcess
    public var badArchitectureAction: Action = .killProcess
    public var rules: [Rule] = []
    /// `program @executable …`: the executor's own program, run from a descriptor it opened on
    /// itself (`execveat`), so no file of the host needs to be in the jail for it.
    public static let executableProgram = "@executable"

    /// Bind sources the launcher fills in at run time from its options (`@database-socket` is
    /// `--database-socket PATH`): what is bound is then exactly that one file.
    public static let placeholders: Set<String> = ["@database-socket"]

    /// The policy with its placeholders filled from `values` (keyed without the `@`).
    public func resolvingPlaceholders(_ values: [String: String]) throws(PolicyError) -> SandboxPolicy {
        var resolved = self
        resolved.mounts = try self.mounts.map { mount throws(PolicyError) in
            guard let source = mount.source, Self.placeholders.contains(source) else { return mount }
            guard let value = values[String(source.dropFirst())], value.hasPrefix("/"), !value.split(separator: "/").contains("..") else {
                throw PolicyError(line: 0, message: "\(source) needs an absolute path (--\(source.dropFirst()) PATH)")
            }
            return Mount(kind: mount.kind, target: mount.target, source: value, options: mount.options, why: mount.why)
        }
        return resolved
    }

    /// Egress places the router resolves at run time: the operator's search backend
    /// (`serve --search-url`), the calling tenant's provider (its base URL).
    public static let egressPlaces: Set<String> = ["search-backend", "tenant-provider"]

    /// The places the router may connect the executor to (`egress search-backend`), resolved by
    /// the router for each call.
    public var egress: [String] = []
    /// System calls the program locks away once started (`after-start kill execve execveat`).
    public var lockedAfterStart: [String] = []

    public init() {}
}
