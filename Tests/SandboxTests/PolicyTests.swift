import CSeccomp
import Foundation
import Glibc
import OneoSandbox
import OneoWire
import Testing

/// The policy as data: it parses with its reasons, it refuses what it should, and the seccomp
/// program built from it does, for every system call number, what the policy says.
@Suite("sandbox policy")
struct PolicyTests {
    static func codeInterpreter() throws -> SandboxPolicy {
        try Self.policy("code_interpreter")
    }

    static func policy(_ tool: String) throws -> SandboxPolicy {
        try SandboxPolicy(parsing: String(decoding: try SandboxFiles.policy(tool), as: UTF8.self))
    }

    static let tools = ["code_interpreter", "web_search", "image_generation", "file_search"]

    @Test("each executor's policy parses, every rule has a reason, and it builds", arguments: Self.tools)
    func builds(tool: String) throws {
        let policy = try Self.policy(tool)
        #expect(policy.tool == tool)
        #expect(policy.program.first == (tool == "code_interpreter" ? "/usr/bin/python3" : SandboxPolicy.executableProgram))
        #expect(Set(policy.namespaces) == Set(SandboxPolicy.Namespace.allCases))
        #expect(policy.rules.allSatisfy { !$0.why.isEmpty })
        #expect(policy.defaultAction == .killProcess)
        #expect(policy.badArchitectureAction == .killProcess)
        let program = try SeccompProgram(policy: policy)
        #expect(program.instructionCount > 10)
    }

    @Test("every system call number of x86_64 gets from each program what its policy says; other ABIs are killed", arguments: Self.tools)
    func everySyscallMatchesThePolicy(tool: String) throws {
        let policy = try Self.policy(tool)
        let program = try SeccompProgram(policy: policy)
        let kill: UInt32 = 0x8000_0000
        var allowed = 0
        var allowedByPolicy = 0
        for number in Int32(0)..<Int32(1024) {
            let rules = policy.rules.filter { $0.number == number }
            // With every argument 0, the rule whose conditions hold decides; none: the default.
            let zero = rules.first { rule in
                rule.conditions.allSatisfy { condition in
                    switch condition.op {
                    case .equal: condition.value == 0
                    case .notEqual: condition.value != 0
                    case .less: 0 < condition.value
                    case .lessOrEqual: true
                    case .greater: false
                    case .greaterOrEqual: condition.value == 0
                    case .maskedEqual: condition.value == 0
                    }
                }
            }
            let expected: UInt32 = zero.map { Self.code($0.action) } ?? kill
            let verdict = program.verdict(syscall: number)
            let name = seccomp_syscall_resolve_num_arch(0, number).map { pointer in defer { free(pointer) }; return String(cString: pointer) } ?? "#\(number)"
            #expect(verdict == expected, "\(name) (\(number)): the program says \(verdict.map(SeccompProgram.describe) ?? "nothing"), the policy \(SeccompProgram.describe(expected))")
            if verdict == 0x7FFF_0000 { allowed += 1 }
            if expected == 0x7FFF_0000 { allowedByPolicy += 1 }
            // Beyond the filter's architecture nothing is allowed.
            #expect(program.verdict(syscall: number, architecture: SeccompProgram.i386) == kill, "i386 \(number)")
            #expect(program.verdict(syscall: number | 0x4000_0000) == kill, "x32 \(number)")
        }
        #expect(allowed == allowedByPolicy)
        #expect(allowed >= Set(policy.rules.filter { $0.action == .allow && $0.conditions.isEmpty }.map(\.number)).count)
        // Conditions hold as written: ioctl allows TCGETS, refuses TIOCSTI even with high bits.
        let ioctl = seccomp_syscall_resolve_name("ioctl")
        #expect(program.verdict(syscall: ioctl, arguments: [1, 0x5401, 0, 0, 0, 0]) == 0x7FFF_0000)
        #expect(program.verdict(syscall: ioctl, arguments: [1, 0x5412, 0, 0, 0, 0]) == 0x0005_0001)
        #expect(program.verdict(syscall: ioctl, arguments: [1, 0x1_0000_5412, 0, 0, 0, 0]) == 0x0005_0001)
        #expect(program.verdict(syscall: ioctl, arguments: [1, 0x5422, 0, 0, 0, 0]) == kill, "an ioctl not listed")
        // Every jail: no io_uring, no new mount API, clone3 answered ENOSYS.
        for name in ["io_uring_setup", "io_uring_enter", "io_uring_register", "fsopen", "fsmount", "open_tree", "move_mount", "mount", "unshare", "setns", "ptrace", "bpf", "keyctl", "userfaultfd", "perf_event_open"] {
            #expect(program.verdict(syscall: seccomp_syscall_resolve_name(name)) == kill, "\(name)")
        }
        #expect(program.verdict(syscall: seccomp_syscall_resolve_name("clone3")) == 0x0005_0026, "clone3: ENOSYS")
        guard tool == "code_interpreter" else { return }
        let clone = seccomp_syscall_resolve_name("clone")
        #expect(program.verdict(syscall: clone, arguments: [0x003D_0F00, 0, 0, 0, 0, 0]) == 0x7FFF_0000, "a thread")
        #expect(program.verdict(syscall: clone, arguments: [0x1000_0011, 0, 0, 0, 0, 0]) == kill, "a new user namespace")
    }

    @Test("the executors that run our own code have no network of their own: no socket, no connect, no process, no exec but their own start", arguments: ["web_search", "image_generation", "file_search"])
    func ownCodeExecutors(tool: String) throws {
        let program = try SeccompProgram(policy: try Self.policy(tool))
        let kill: UInt32 = 0x8000_0000
        func verdict(_ name: String, _ arguments: [UInt64] = [0, 0, 0, 0, 0, 0]) -> UInt32? {
            program.verdict(syscall: seccomp_syscall_resolve_name(name), arguments: arguments)
        }
        for family: UInt64 in [2, 10, 16, 17] {
            #expect(verdict("socket", [family, 1, 0, 0, 0, 0]) == 0x0005_000D, "socket(\(family)): EACCES")
        }
        if tool == "file_search" {
            // Its database connection: a Unix socket, to the one socket file bound into its jail.
            #expect(verdict("socket", [1, 1, 0, 0, 0, 0]) == 0x7FFF_0000)
            #expect(verdict("connect", [3, 0x7fff_0000, 16, 0, 0, 0]) == 0x7FFF_0000)
            #expect(verdict("socketpair", [1, 1, 0, 0, 0, 0]) == kill)
        } else {
            #expect(verdict("socket", [1, 1, 0, 0, 0, 0]) == 0x0005_000D, "socket(AF_UNIX): EACCES")
            #expect(verdict("connect", [3, 0x7fff_0000, 16, 0, 0, 0]) == 0x0005_0000, "connect answers 0 and never runs")
            #expect(verdict("socketpair", [1, 1, 0, 0, 0, 0]) == 0x7FFF_0000, "a connected AF_UNIX pair")
        }
        #expect(verdict("socketpair", [2, 1, 0, 0, 0, 0]) == kill)
        #expect(verdict("execve") == kill)
        #expect(verdict("execveat", [3, 0, 0, 0, 0x1000, 0]) == 0x7FFF_0000, "its own start, from a descriptor")
        #expect(verdict("execveat", [3, 0, 0, 0, 0, 0]) == kill, "execveat of a path")
        for name in ["clone", "fork", "vfork", "kill", "memfd_create", "pidfd_getfd", "open_by_handle_at", "personality"] {
            #expect(verdict(name) == kill, "\(name)")
        }
        #expect(verdict("prctl", [1, 9, 0, 0, 0, 0]) == 0x7FFF_0000, "PR_SET_PDEATHSIG")
        #expect(verdict("prctl", [4, 0, 0, 0, 0, 0]) == kill, "PR_SET_DUMPABLE and every other option")
        #expect(verdict("prlimit64", [0, 7, 0x7fff_0000, 0, 0, 0]) == kill, "setting a limit")
        // The start's execveat is locked away by the program's first act.
        #expect(Set(try Self.policy(tool).lockedAfterStart) == ["execve", "execveat", "seccomp"])
        #expect(verdict("seccomp", [1, 0, 0x7fff_0000, 0, 0, 0]) == 0x7FFF_0000, "adding a filter (it can only narrow)")
    }

    static func code(_ action: SandboxPolicy.Action) -> UInt32 {
        switch action {
        case .allow: 0x7FFF_0000
        case .errno(_, let value): 0x0005_0000 | UInt32(value)
        case .killProcess: 0x8000_0000
        case .log: 0x7FFC_0000
        }
    }

    @Test("a policy with a fault is refused with its line", arguments: [
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\nallow read\n", "needs a reason"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\nallow frobnicate -- why\n", "not a system call"),
        ("tool t\nprogram /bin/x -- why\nnamespaces pid -- why\n", "user namespace"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid mount ipc -- why\n", "net namespace"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount bind-ro /usr /usr -- why\nallow read -- why\n", "first mount"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\nmount bind-ro /x /tmp/secret -- why\nallow read -- why\n", "under /tmp"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\nallow read -- why\nallow read -- why\n", "already has a rule"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\nallow ioctl arg1 == NOSUCH -- why\n", "not a known value"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs /../x size=1m -- why\n", "without '..'"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nmount tmpfs / size=1m -- why\negress example.com:443 -- why\nallow read -- why\n", "egress takes one of"),
        ("tool t\nprogram /bin/x -- why\nnamespaces user pid net mount ipc -- why\nidentity 0 0 -- why\n", "neither 0"),
    ])
    func refusals(text: String, expected: String) {
        #expect {
            _ = try SandboxPolicy(parsing: text)
        } throws: { error in
            "\(error)".contains(expected)
        }
    }

    @Test("the executor refuses to start on a broken policy, and when the jail would be root on the host")
    func executorRefuses() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-policy-\(UInt32.random(in: 0 ... .max))")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let broken = directory.appendingPathComponent("code_interpreter.policy")
        try Data("tool code_interpreter\nallow frobnicate -- why\n".utf8).write(to: broken)
        let executor = try ToolExecutor(policy: broken.path)
        #expect(executor.waitForExit() == 78)
        #expect(executor.log.contains("refusing to run"))
        #expect(executor.log.contains("frobnicate"))

        // A policy others may write could be a planted one: refused before it is read.
        let writable = directory.appendingPathComponent("writable.policy")
        try Data(try SandboxFiles.policy("code_interpreter")).write(to: writable)
        chmod(writable.path, 0o666)
        let refused = try ToolExecutor(policy: writable.path)
        #expect(refused.waitForExit() == 78)
        #expect(refused.log.contains("others may write"))
    }
}

/// The executor's wire: a malformed frame gets an error and the next call is served; an oversized
/// one gets an error and the connection ends cleanly, never a crash.
@Suite("executor frames", .serialized, .enabled(if: ToolExecutor.jailsAvailable, ToolExecutor.skipReason))
struct ExecutorFrameTests {
    @Test("malformed frames, wrong tools and bad arguments get errors; the executor serves on")
    func malformed() throws {
        let executor = try ToolExecutor()
        executor.sendRaw([0, 0, 0, 5] + Array("{nope".utf8))
        let answer = try executor.socket.receive(ToolResponse.self)
        #expect(answer.error?.contains("malformed") == true)
        #expect(try executor.call(["code": "print(1)"], tool: "web_search").error?.contains("runs code_interpreter") == true)
        #expect(try executor.call(["script": "print(1)"]).error?.contains("takes") == true)
        #expect(try executor.call(["code": .string(String(repeating: "x", count: 300_000))]).error?.contains("limit") == true)
        #expect(try executor.run("print(6 * 7)").stdout == "42\n")
    }

    @Test("an oversized frame is answered with an error and the executor exits cleanly")
    func oversized() throws {
        let executor = try ToolExecutor()
        executor.sendRaw([0x10, 0, 0, 0])
        let answer = try executor.socket.receive(ToolResponse.self)
        #expect(answer.error?.contains("size limit") == true)
        #expect(executor.waitForExit() == 3, "a clean exit, not a signal")
    }
}
