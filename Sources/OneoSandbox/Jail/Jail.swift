import CSandbox
import Glibc

/// Starts programs in the jail a policy describes: its namespaces, a root built from nothing, one
/// identity mapped to `outer` uid and gid, rlimits, its own session, no_new_privs, and the
/// policy's seccomp program installed last before execve.
public struct Jail: Sendable {
    public let policy: SandboxPolicy
    public let program: SeccompProgram
    public let outerUID: UInt32
    public let outerGID: UInt32

    public struct SpawnError: Error, Sendable, CustomStringConvertible {
        public let step: String
        public let code: Int32
        public var description: String { "jail: \(self.step) failed: \(String(cString: strerror(self.code))) (errno \(self.code))" }
    }

    /// Builds the seccomp program once. `outer` is the identity the jail's processes have on the
    /// host: an unprivileged executor may only name its own.
    public init(policy: SandboxPolicy, outerUID: UInt32, outerGID: UInt32) throws(SeccompProgram.BuildError) {
        self.policy = policy
        self.program = try SeccompProgram(policy: policy)
        self.outerUID = outerUID
        self.outerGID = outerGID
    }

    /// Descriptors the jailed program gets as 0, 1, 2 and 3 (-1: closed).
    public struct Descriptors: Sendable {
        public var input: Int32
        public var output: Int32
        public var error: Int32
        public var extra: Int32
        /// For a policy whose program is `@executable`: the descriptor of that program, run with
        /// execveat (it need not be visible inside the jail).
        public var program: Int32

        public init(input: Int32, output: Int32, error: Int32, extra: Int32 = -1, program: Int32 = -1) {
            self.input = input
            self.output = output
            self.error = error
            self.extra = extra
            self.program = program
        }
    }

    /// Starts the policy's program with `arguments` after its own, in a fresh jail. Returns its
    /// pid; it is the first process of its pid namespace, so killing it ends the whole jail.
    public func spawn(arguments: [String], environment: [String], descriptors: Descriptors) throws(SpawnError) -> Int32 {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func c(_ text: String) -> UnsafeMutablePointer<CChar> {
            let copy = strdup(text)!
            owned.append(copy)
            return copy
        }
        func optional(_ text: String?) -> UnsafePointer<CChar>? { text.map { UnsafePointer(c($0)) } }
        let mounts = self.policy.mounts.map { mount in
            oneo_jail_mount(kind: Self.kind(mount.kind), source: optional(mount.source), target: c(mount.target), options: optional(mount.options))
        }
        let limits = self.policy.limits.map { oneo_jail_limit(resource: Self.resource($0.resource), soft: $0.value, hard: $0.value) }
        let fromDescriptor = self.policy.program[0] == SandboxPolicy.executableProgram
        if fromDescriptor && descriptors.program < 0 { throw SpawnError(step: "the policy runs @executable and no program descriptor was given", code: EINVAL) }
        var argv: [UnsafeMutablePointer<CChar>?] = ((fromDescriptor ? ["oneo-tool"] : [self.policy.program[0]]) + self.policy.program.dropFirst() + arguments).map { c($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = environment.map { c($0) } + [nil]
        let path = c(self.policy.program[0])
        let hostname = optional(self.policy.hostname)
        let workdir = optional(self.policy.workdir)
        var pid: pid_t = 0
        var error = [CChar](repeating: 0, count: 160)
        let result = mounts.withUnsafeBufferPointer { mountBuffer in
            limits.withUnsafeBufferPointer { limitBuffer in
                self.program.bytes.withUnsafeBytes { filter in
                    var jail = oneo_jail(
                        namespaces: Self.flags(self.policy.namespaces), inner_uid: self.policy.uid, inner_gid: self.policy.gid,
                        outer_uid: self.outerUID, outer_gid: self.outerGID, hostname: hostname,
                        mounts: mountBuffer.baseAddress, mount_count: Int32(mountBuffer.count),
                        limits: limitBuffer.baseAddress, limit_count: Int32(limitBuffer.count),
                        workdir: workdir, filter: filter.baseAddress, filter_length: UInt16(self.program.instructionCount),
                        stdin_fd: descriptors.input, stdout_fd: descriptors.output, stderr_fd: descriptors.error, extra_fd: descriptors.extra,
                        exec_fd: fromDescriptor ? descriptors.program : -1
                    )
                    return oneo_jail_spawn(&jail, path, &argv, &envp, &pid, &error, Int32(error.count))
                }
            }
        }
        guard result == 0 else {
            let step = error.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
            throw SpawnError(step: step.isEmpty ? "spawn" : step, code: result)
        }
        return pid
    }

    static func flags(_ namespaces: [SandboxPolicy.Namespace]) -> Int32 {
        namespaces.reduce(0) { flags, namespace in
            let flag: Int32 = switch namespace {
            case .user: 0x1000_0000
            case .pid: 0x2000_0000
            case .net: 0x4000_0000
            case .mount: 0x0002_0000
            case .ipc: 0x0800_0000
            case .uts: 0x0400_0000
            }
            return flags | flag
        }
    }

    static func kind(_ kind: SandboxPolicy.Mount.Kind) -> Int32 {
        switch kind {
        case .tmpfs: Int32(ONEO_MOUNT_TMPFS.rawValue)
        case .tmpfsReadOnly: Int32(ONEO_MOUNT_TMPFS_RO.rawValue)
        case .bindReadOnly: Int32(ONEO_MOUNT_BIND_RO.rawValue)
        case .bindReadWrite: Int32(ONEO_MOUNT_BIND_RW.rawValue)
        case .symlink: Int32(ONEO_MOUNT_SYMLINK.rawValue)
        case .directory: Int32(ONEO_MOUNT_DIRECTORY.rawValue)
        case .device: Int32(ONEO_MOUNT_DEVICE.rawValue)
        }
    }

    static func resource(_ resource: SandboxPolicy.Limit.Resource) -> Int32 {
        switch resource {
        case .cpu: 0
        case .fsize: 1
        case .stack: 3
        case .core: 4
        case .nproc: 6
        case .nofile: 7
        case .memlock: 8
        case .as: 9
        case .locks: 10
        case .msgqueue: 12
        }
    }
}
