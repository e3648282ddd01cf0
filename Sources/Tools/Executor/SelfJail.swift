import CSandbox
import Glibc
import OneoSandbox

/// How the executors that run our own code (web search, images, file search) are sandboxed: the
/// process the supervisor starts only builds the jail its policy describes and starts this same
/// program inside it (run from a descriptor opened on itself: execveat), giving it the
/// supervisor's socket as descriptor 3; then it waits. The jailed program runs under the policy's
/// seccomp filter from its first instruction, and is what parses every byte from the outside.
enum SelfJail {
    /// Runs the jailed executor to its end; returns its exit status (or 128 + signal).
    static func run(policy unresolved: SandboxPolicy, options: [String: String], arguments: [String], outerUID: UInt32, outerGID: UInt32) -> Int32 {
        let policy: SandboxPolicy
        do {
            policy = try unresolved.resolvingPlaceholders(options)
        } catch {
            Log.line("refusing to run: \(error)")
            return 78
        }
        let program = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard program >= 0 else {
            Log.line("refusing to run: cannot open our own program: \(String(cString: strerror(errno)))")
            return 71
        }
        let jail: Jail
        do {
            jail = try Jail(policy: policy, outerUID: outerUID, outerGID: outerGID)
        } catch {
            Log.line("refusing to run: \(error)")
            return 78
        }
        let pid: Int32
        do {
            pid = try jail.spawn(
                arguments: arguments, environment: [],
                descriptors: .init(input: -1, output: 2, error: 2, extra: FrameSocketDescriptor.child, program: program)
            )
        } catch {
            Log.line("refusing to run: the jail did not start: \(error)")
            return 71
        }
        close(program)
        // The socket is the jailed program's now: when it ends, the supervisor sees it close.
        close(FrameSocketDescriptor.child)
        let pidfd = oneo_pidfd_open(pid)
        guard pidfd >= 0 else {
            _ = oneo_jail_kill(pid)
            return 71
        }
        var ended: Int32 = 0, status: Int32 = 0
        while true {
            let result = oneo_pidfd_wait(pidfd, 1, &ended, &status)
            if result == EINTR { continue }
            guard result == 0, ended == 1 else { return 71 }
            break
        }
        Log.line("the jailed executor ended: \(status < 0 ? "signal \(-status)" : "status \(status)")")
        return status < 0 ? 128 - status : status
    }
}

enum FrameSocketDescriptor {
    static let child: Int32 = 3
}
