import CProcess
import Logging
import OneoWire
import OneoStore
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

/// A child we started: its pid and, when it has one, our end of its socket.
struct RunningChild: Sendable {
    let pid: pid_t
    let channel: FrameSocket?
    /// Our end of the pipe its stdout and stderr go to.
    let output: Int32
}

/// The one spawn function: posix_spawn through `CProcess` (no fork() in a threaded process),
/// the child's end of a socketpair as fd 3, its stdout and stderr into a pipe of ours. Call it on
/// the `SpawnThread` only.
enum Spawner {
    static func spawn(_ spec: ChildSpec) throws(SpawnError) -> RunningChild {
        var output: [Int32] = [-1, -1]
        let piped = oneo_pipe(&output, 0)
        guard piped == 0 else {
            throw SpawnError(child: spec.name, detail: "pipe failed: \(String(cString: strerror(piped)))")
        }
        var pair: [Int32] = [-1, -1]
        if spec.wantsChannel {
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                close(output[0])
                close(output[1])
                throw SpawnError(child: spec.name, detail: "socketpair failed: \(String(cString: strerror(errno)))")
            }
        }
        let argv = ([spec.executable] + spec.arguments).map { strdup($0) } + [nil]
        let envp = spec.environment.sorted(by: { $0.key < $1.key }).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = oneo_spawn(spec.executable, argv, envp, pair[1], output[1], &pid)
        close(output[1])
        if pair[1] >= 0 { close(pair[1]) }
        guard result == 0 else {
            close(output[0])
            if pair[0] >= 0 { close(pair[0]) }
            throw SpawnError(child: spec.name, detail: "cannot start \(spec.executable): \(String(cString: strerror(result)))")
        }
        return RunningChild(pid: pid, channel: pair[0] >= 0 ? FrameSocket(descriptor: pair[0]) : nil, output: output[0])
    }
}

/// A child that could not be started.
struct SpawnError: Error, Sendable, CustomStringConvertible {
    let child: String
    let detail: String
    var description: String { "\(self.child): \(self.detail)" }
}
