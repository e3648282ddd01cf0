import CSandbox
import CSeccomp
import Glibc

/// The classic-BPF program libseccomp builds from a policy's rules: built once, when the executor
/// starts, and installed by every jail just before its execve. The one type that holds a
/// libseccomp context, for as long as the build takes.
public struct SeccompProgram: Sendable, Equatable {
    /// `struct sock_filter` entries, 8 bytes each, as the kernel takes them.
    public let bytes: [UInt8]

    public var instructionCount: Int { self.bytes.count / 8 }

    public struct BuildError: Error, Sendable, CustomStringConvertible {
        public let step: String
        public let code: Int32
        public var description: String { "seccomp: \(self.step) failed (\(self.code < 0 ? -self.code : self.code))" }
    }

    /// Installs, on the calling process, a second filter that kills it on any of `names` (the
    /// policy's `after-start kill` line): a filter can only narrow what the first allows, so
    /// once the program has started, what only its start needed (execveat) is gone for good.
    public static func lockAfterStart(_ names: [String]) throws(BuildError) {
        guard !names.isEmpty else { return }
        guard let context = seccomp_init(SCMP_ACT_ALLOW) else { throw BuildError(step: "seccomp_init", code: -1) }
        defer { seccomp_release(context) }
        // no_new_privs is set already (the jail set it): libseccomp need not ask again.
        var result = seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0)
        guard result == 0 else { throw BuildError(step: "seccomp_attr_set", code: result) }
        for name in names {
            let number = seccomp_syscall_resolve_name(name)
            guard number >= 0 else { throw BuildError(step: "resolving \(name)", code: -22) }
            result = seccomp_rule_add_array(context, SCMP_ACT_KILL_PROCESS, number, 0, nil)
            guard result == 0 else { throw BuildError(step: "rule for \(name)", code: result) }
        }
        result = seccomp_load(context)
        guard result == 0 else { throw BuildError(step: "seccomp_load", code: result) }
    }

    public init(policy: SandboxPolicy) throws(BuildError) {
        guard let context = seccomp_init(Self.code(policy.defaultAction)) else { throw BuildError(step: "seccomp_init", code: -1) }
        defer { seccomp_release(context) }
        var result = seccomp_attr_set(context, SCMP_FLTATR_ACT_BADARCH, Self.code(policy.badArchitectureAction))
        guard result == 0 else { throw BuildError(step: "set the bad-architecture action", code: result) }
        // The jail sets no_new_privs itself, right before it installs the program.
        result = seccomp_attr_set(context, SCMP_FLTATR_CTL_NNP, 0)
        guard result == 0 else { throw BuildError(step: "leave no_new_privs to the jail", code: result) }
        for rule in policy.rules {
            var comparisons = rule.conditions.map { condition -> scmp_arg_cmp in
                let op: scmp_compare = switch condition.op {
                case .equal: SCMP_CMP_EQ
                case .notEqual: SCMP_CMP_NE
                case .less: SCMP_CMP_LT
                case .lessOrEqual: SCMP_CMP_LE
                case .greater: SCMP_CMP_GT
                case .greaterOrEqual: SCMP_CMP_GE
                case .maskedEqual: SCMP_CMP_MASKED_EQ
                }
                // A masked comparison takes the mask first and the value second.
                return condition.op == .maskedEqual
                    ? scmp_arg_cmp(arg: UInt32(condition.argument), op: op, datum_a: condition.mask, datum_b: condition.value)
                    : scmp_arg_cmp(arg: UInt32(condition.argument), op: op, datum_a: condition.value, datum_b: 0)
            }
            result = seccomp_rule_add_array(context, Self.code(rule.action), rule.number, UInt32(comparisons.count), &comparisons)
            guard result == 0 else { throw BuildError(step: "rule on line \(rule.line) (\(rule.syscall))", code: result) }
        }
        let fd = oneo_memfd("oneo-seccomp")
        guard fd >= 0 else { throw BuildError(step: "memfd_create", code: errno) }
        defer { close(fd) }
        result = seccomp_export_bpf(context, fd)
        guard result == 0 else { throw BuildError(step: "seccomp_export_bpf", code: result) }
        let size = lseek(fd, 0, SEEK_END)
        guard size > 0, size % 8 == 0, size / 8 <= 4096, lseek(fd, 0, SEEK_SET) == 0 else { throw BuildError(step: "read the exported program", code: EIO) }
        var bytes = [UInt8](repeating: 0, count: Int(size))
        let read = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
        guard read == size else { throw BuildError(step: "read the exported program", code: EIO) }
        self.bytes = bytes
    }

    /// libseccomp's code for an action (its SCMP_ACT_* macros are not visible to Swift).
    static func code(_ action: SandboxPolicy.Action) -> UInt32 {
        switch action {
        case .allow: 0x7FFF_0000
        case .errno(_, let value): 0x0005_0000 | (UInt32(value) & 0xFFFF)
        case .killProcess: 0x8000_0000
        case .log: 0x7FFC_0000
        }
    }

    // MARK: Reading the program back

    /// AUDIT_ARCH_X86_64, AUDIT_ARCH_I386: what `seccomp_data.arch` holds for each ABI.
    public static let x86_64: UInt32 = 0xC000_003E
    public static let i386: UInt32 = 0x4000_0003

    /// What the kernel would do with a call: the program run over a `seccomp_data` in a small
    /// classic-BPF interpreter (the instructions libseccomp emits). The tests run it over every
    /// system call number, so the program and the policy cannot drift apart.
    public func verdict(syscall: Int32, architecture: UInt32 = SeccompProgram.x86_64, arguments: [UInt64] = Array(repeating: 0, count: 6)) -> UInt32? {
        // seccomp_data: nr (4), arch (4), instruction_pointer (8), args[6] (8 each).
        var data = [UInt8](repeating: 0, count: 64)
        func put32(_ value: UInt32, at offset: Int) {
            for index in 0..<4 { data[offset + index] = UInt8((value >> (8 * UInt32(index))) & 0xFF) }
        }
        put32(UInt32(bitPattern: syscall), at: 0)
        put32(architecture, at: 4)
        for (index, argument) in arguments.prefix(6).enumerated() {
            put32(UInt32(argument & 0xFFFF_FFFF), at: 16 + 8 * index)
            put32(UInt32(argument >> 32), at: 20 + 8 * index)
        }
        var accumulator: UInt32 = 0
        var index: UInt32 = 0
        var memory = [UInt32](repeating: 0, count: 16)
        var pc = 0
        var steps = 0
        while pc < self.instructionCount, steps < 100_000 {
            steps += 1
            let base = pc * 8
            let code = UInt16(self.bytes[base]) | UInt16(self.bytes[base + 1]) << 8
            let jt = Int(self.bytes[base + 2])
            let jf = Int(self.bytes[base + 3])
            let k = UInt32(self.bytes[base + 4]) | UInt32(self.bytes[base + 5]) << 8 | UInt32(self.bytes[base + 6]) << 16 | UInt32(self.bytes[base + 7]) << 24
            pc += 1
            switch code {
            case 0x20: // BPF_LD | BPF_W | BPF_ABS
                guard Int(k) + 4 <= data.count else { return nil }
                accumulator = UInt32(data[Int(k)]) | UInt32(data[Int(k) + 1]) << 8 | UInt32(data[Int(k) + 2]) << 16 | UInt32(data[Int(k) + 3]) << 24
            case 0x00: accumulator = k // BPF_LD | BPF_IMM
            case 0x01: index = k // BPF_LDX | BPF_IMM
            case 0x02: memory[Int(k) & 15] = accumulator // BPF_ST
            case 0x03: memory[Int(k) & 15] = index // BPF_STX
            case 0x60: accumulator = memory[Int(k) & 15] // BPF_LD | BPF_MEM
            case 0x61: index = memory[Int(k) & 15] // BPF_LDX | BPF_MEM
            case 0x87: accumulator = index // BPF_MISC | BPF_TXA
            case 0x07: index = accumulator // BPF_MISC | BPF_TAX
            case 0x54: accumulator &= k // BPF_ALU | BPF_AND | BPF_K
            case 0x44: accumulator |= k // BPF_ALU | BPF_OR | BPF_K
            case 0x05: pc += Int(k) // BPF_JMP | BPF_JA
            case 0x15: pc += accumulator == k ? jt : jf // BPF_JMP | BPF_JEQ | BPF_K
            case 0x25: pc += accumulator > k ? jt : jf // BPF_JGT
            case 0x35: pc += accumulator >= k ? jt : jf // BPF_JGE
            case 0x45: pc += (accumulator & k) != 0 ? jt : jf // BPF_JSET
            case 0x06: return k // BPF_RET | BPF_K
            case 0x16: return accumulator // BPF_RET | BPF_A
            default: return nil
            }
        }
        return nil
    }

    /// The action a verdict stands for, in the policy's words.
    public static func describe(_ verdict: UInt32) -> String {
        switch verdict & 0xFFFF_0000 {
        case 0x7FFF_0000: "allow"
        case 0x0005_0000: "errno \(verdict & 0xFFFF)"
        case 0x8000_0000: "kill-process"
        case 0x0000_0000: "kill-thread"
        case 0x7FFC_0000: "log"
        case 0x0003_0000: "trap"
        default: String(verdict, radix: 16)
        }
    }
}
