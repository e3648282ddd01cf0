import Foundation
import CProcess
import Glibc
import OneoSandbox
import OneoWire

/// `oneo-tool TOOL --policy FILE [--sandbox-uid N --sandbox-gid N] [--pool N] [--timeout-ms N]`:
/// one tool executor, serving requests on descriptor 3. It loads its sandbox policy first and
/// refuses to run when the policy does not parse or its seccomp program does not build.
func main() -> Int32 {
    // Dies with its parent (the supervisor), and its jails with it (theirs is armed too).
    let parent = getppid()
    _ = oneo_set_parent_death_signal(SIGKILL)
    guard getppid() == parent else { return 0 }
    _ = oneo_set_no_new_privs()
    // Not PR_SET_DUMPABLE 0: a jail's /proc files would then be root's, and we could not write
    // its uid map. The jails cannot see us anyway: they are in pid namespaces of their own.
    // Not CommandLine.arguments: in a jail there is no /proc for the static runtime to read them from.
    var arguments = (1..<max(1, oneo_argument_count())).compactMap { oneo_argument(Int32($0)).map { String(cString: $0) } }
    guard let tool = arguments.first, !tool.hasPrefix("-") else {
        Log.line("usage: oneo-tool code_interpreter|web_search|image_generation|file_search --policy FILE [--sandbox-uid N --sandbox-gid N] [--pool N] [--timeout-ms N] [--backend URL] [--database-socket PATH]")
        return 2
    }
    arguments.removeFirst()
    var options: [String: String] = [:]
    while arguments.count >= 2, arguments[0].hasPrefix("--") {
        options[String(arguments[0].dropFirst(2))] = arguments[1]
        arguments.removeFirst(2)
    }
    // `echo`: answers each request with its arguments, in no jail (it runs nothing): the
    // benchmark's measure of what routing a call costs.
    if tool == "echo" {
        return ExecutorLoop(socket: FrameSocket(descriptor: FrameSocket.childDescriptor, acceptsDescriptors: false), tool: tool, handle: { $0.arguments }, afterEach: {}).run()
    }
    // Inside its jail (started by the branch below): serve one call, under the policy's seccomp
    // filter since execveat, with no network and no file of the host but /usr and the policy's few.
    if options["inside"] == "jail" {
        return JailedExecutor.serve(tool: tool, options: options)
    }
    guard arguments.isEmpty, let policyPath = options["policy"] else {
        Log.line("--policy FILE is required (and every option takes a value)")
        return 2
    }
    let policy: SandboxPolicy
    do {
        let bytes = try SandboxDirectory.readPolicy(policyPath)
        policy = try SandboxPolicy(parsing: String(decoding: bytes, as: UTF8.self))
    } catch let error as SandboxDirectory.UntrustedPolicy {
        Log.line("refusing to run: \(error)")
        return 78
    } catch {
        Log.line("refusing to run: the policy \(policyPath) cannot be used: \(error)")
        return 78
    }
    guard policy.tool == tool else {
        Log.line("refusing to run: \(policyPath) is the policy of \(policy.tool), not \(tool)")
        return 78
    }
    let uid = getuid(), gid = getgid()
    let outerUID = options["sandbox-uid"].flatMap(UInt32.init) ?? uid
    let outerGID = options["sandbox-gid"].flatMap(UInt32.init) ?? gid
    guard outerUID != 0, outerGID != 0 else {
        Log.line("refusing to run: the jail's identity would be root on the host; give --sandbox-uid and --sandbox-gid")
        return 78
    }
    let jail: Jail
    do {
        // Placeholders (the database's socket) are filled from our options first.
        jail = try Jail(policy: try policy.resolvingPlaceholders(options), outerUID: outerUID, outerGID: outerGID)
    } catch {
        Log.line("refusing to run: \(error)")
        return 78
    }
    if tool != "code_interpreter" {
        // Our own code in the jail: what it is told comes in argv (no secrets: keys come per call).
        var passed = ["--inside", "jail"]
        for name in JailedExecutor.passedOptions(tool) {
            guard let value = options[name] else {
                Log.line("--\(name) is required for \(tool)")
                return 2
            }
            passed += ["--\(name)", value]
        }
        if !policy.lockedAfterStart.isEmpty { passed += ["--lock", policy.lockedAfterStart.joined(separator: ",")] }
        return SelfJail.run(jail: jail, arguments: passed)
    }
    let socket = FrameSocket(descriptor: FrameSocket.childDescriptor, acceptsDescriptors: false)
    switch tool {
    case "code_interpreter":
        var timeout = Duration.milliseconds(policy.timeoutMilliseconds)
        // A caller may shorten the policy's timeout (the tests do), never lengthen it.
        if let text = options["timeout-ms"], let milliseconds = Int(text), milliseconds > 0, milliseconds < policy.timeoutMilliseconds {
            timeout = .milliseconds(milliseconds)
        }
        let pool = max(0, min(options["pool"].flatMap(Int.init) ?? 2, 16))
        let interpreter = CodeInterpreter(jail: jail, timeout: timeout, poolSize: pool)
        do {
            try interpreter.refill()
        } catch {
            Log.line("refusing to run: the first jail did not start: \(error)")
            return 71
        }
        Log.line("code_interpreter ready: policy \(policyPath), \(policy.rules.count) rules, \(jail.program.instructionCount) BPF instructions, pool \(pool)")
        return ExecutorLoop(
            socket: socket, tool: tool,
            handle: { request in
                let result = try interpreter.run(arguments: request.arguments)
                let data = try JSONEncoder().encode(result)
                return try JSONValue.parse(Array(data))
            },
            afterEach: {
                do { try interpreter.refill() } catch { Log.line("refilling the pool failed: \(error)") }
            }
        ).run()
    default:
        Log.line("unknown tool \(tool)")
        return 2
    }
}

signal(SIGPIPE, SIG_IGN)
exit(main())
