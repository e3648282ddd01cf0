import CProcess
import Logging
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

/// A child we started: its pid and, when it has one, our end of its socket.
struct RunningChild: Sendable {
    let spec: ChildSpec
    let pid: pid_t
    let channel: FrameSocket?
}

/// The one spawn function: posix_spawn through `CProcess` (no fork() in a threaded process),
/// the child's end of a socketpair as fd 3, and the bootstrap frame written before we return.
enum Spawner {
    static func spawn(_ spec: ChildSpec) throws(SpawnError) -> RunningChild {
        var pair: [Int32] = [-1, -1]
        if spec.bootstrap != nil {
            guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &pair) == 0 else {
                throw SpawnError(child: spec.name, detail: "socketpair failed: errno \(errno)")
            }
        }
        let argv = ([spec.executable] + spec.arguments).map { strdup($0) } + [nil]
        let envp = spec.environment.sorted(by: { $0.key < $1.key }).map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = oneo_spawn(spec.executable, argv, envp, pair[1], -1, &pid)
        if pair[1] >= 0 { close(pair[1]) }
        guard result == 0 else {
            if pair[0] >= 0 { close(pair[0]) }
            throw SpawnError(child: spec.name, detail: "cannot start \(spec.executable): \(String(cString: strerror(result)))")
        }
        guard let bootstrap = spec.bootstrap else { return RunningChild(spec: spec, pid: pid, channel: nil) }
        let channel = FrameSocket(descriptor: pair[0])
        do {
            // A fresh socket's buffer holds far more than one bootstrap frame: this write cannot block.
            try channel.send(bootstrap)
        } catch {
            kill(pid, SIGKILL)
            throw SpawnError(child: spec.name, detail: "bootstrap frame not delivered: \(error)")
        }
        return RunningChild(spec: spec, pid: pid, channel: channel)
    }
}

/// A child that could not be started.
struct SpawnError: Error, Sendable, CustomStringConvertible {
    let child: String
    let detail: String
    var description: String { "\(self.child): \(self.detail)" }
}
