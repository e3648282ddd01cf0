import CSandbox
import Foundation
import Glibc
import OneoSandbox
import OneoWire

/// Runs the model's Python, each call in a fresh jail. A few jails are started ahead (a warm
/// pool): each is an interpreter already running in its jail, blocked reading its code, so a call
/// pays a pipe write instead of a process start. A jail serves one call and is gone.
final class CodeInterpreter {
    /// The most code one call may send.
    static let codeBytes = 256 * 1024

    private let jail: Jail
    private let timeout: Duration
    private let poolSize: Int
    private var pool: [Warm] = []

    /// One interpreter waiting in its jail: its pid (first of its pid namespace), a pidfd that
    /// polls readable when it ends, and our ends of its stdin, stdout, stderr and report pipe.
    struct Warm {
        let pid: pid_t
        let pidfd: Int32
        let input: Int32
        let output: Int32
        let error: Int32
        let report: Int32
    }


    init(jail: Jail, timeout: Duration, poolSize: Int) {
        self.jail = jail
        self.timeout = timeout
        self.poolSize = poolSize
    }

    deinit {
        for warm in self.pool { Self.discard(warm) }
    }

    /// Fills the pool up to its size (after a call, before the next is read).
    func refill() throws {
        while self.pool.count < self.poolSize {
            self.pool.append(try self.start())
        }
    }

    func run(arguments: JSONValue) throws -> CodeRunResult {
        guard case .string(let code)? = arguments["code"] else { throw ToolFailure(message: "code_interpreter takes {\"code\": \"…python…\"}") }
        guard code.utf8.count <= Self.codeBytes else { throw ToolFailure(message: "code is \(code.utf8.count) bytes; the limit is \(Self.codeBytes)") }
        let warm = self.pool.isEmpty ? try self.start() : self.pool.removeFirst()
        return self.drive(warm, code: Array(code.utf8))
    }

    private func start() throws -> Warm {
        var input: [Int32] = [-1, -1], output: [Int32] = [-1, -1], errors: [Int32] = [-1, -1], report: [Int32] = [-1, -1]
        guard oneo_jail_pipe(&input) == 0, oneo_jail_pipe(&output) == 0, oneo_jail_pipe(&errors) == 0, oneo_jail_pipe(&report) == 0 else {
            for fd in input + output + errors + report where fd >= 0 { close(fd) }
            throw ToolFailure(message: "pipe: \(String(cString: strerror(errno)))")
        }
        let pid: pid_t
        do {
            pid = try self.jail.spawn(
                arguments: ["-c", Bootstrap.source], environment: ["PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=/work", "PYTHONHASHSEED=random"],
                descriptors: Jail.Descriptors(input: input[0], output: output[1], error: errors[1], extra: report[1])
            )
        } catch {
            for fd in input + output + errors + report { close(fd) }
            throw ToolFailure(message: error.description)
        }
        for fd in [input[0], output[1], errors[1], report[1]] { close(fd) }
        let pidfd = oneo_pidfd_open(pid)
        guard pidfd >= 0 else {
            _ = oneo_jail_kill(pid)
            var status: Int32 = 0
            waitpid(pid, &status, 0)
            for fd in [input[1], output[0], errors[0], report[0]] { close(fd) }
            throw ToolFailure(message: "pidfd_open: \(String(cString: strerror(errno)))")
        }
        for fd in [input[1], output[0], errors[0], report[0]] {
            _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        }
        return Warm(pid: pid, pidfd: pidfd, input: input[1], output: output[0], error: errors[0], report: report[0])
    }

    private static func discard(_ warm: Warm) {
        _ = oneo_pidfd_kill(warm.pidfd)
        var status: Int32 = 0
        waitpid(warm.pid, &status, 0)
        for fd in [warm.pidfd, warm.input, warm.output, warm.error, warm.report] where fd >= 0 { close(fd) }
    }

    /// Hands the code over and collects what comes back until the jail has ended and its pipes
    /// are drained, killing it at the deadline or when its output passes the cap.
    private func drive(_ warm: Warm, code: [UInt8]) -> CodeRunResult {
        let started = ContinuousClock.now
        let deadline = started + self.timeout
        let cap = self.jail.policy.outputBytes
        var stdout: [UInt8] = [], stderr: [UInt8] = [], report: [UInt8] = []
        let reportCap = Bootstrap.artifactTotalBytes + Bootstrap.artifactCount * 300
        var written = 0
        var input: Int32 = warm.input
        var open: [Int32: Bool] = [warm.output: true, warm.error: true, warm.report: true]
        var exited = false
        var status: Int32 = 0
        var killed = false
        var timedOut = false
        var truncated = false
        var killedAt: ContinuousClock.Instant?
        var buffer = [UInt8](repeating: 0, count: 65_536)

        func kill() {
            // Through the pidfd, and never once it has been reaped: its pid may be another's.
            if !killed, !exited {
                _ = oneo_pidfd_kill(warm.pidfd)
                killed = true
                killedAt = .now
            }
        }

        if code.isEmpty {
            close(input)
            input = -1
        }
        while !(exited && open.values.allSatisfy { !$0 }) {
            let now = ContinuousClock.now
            if !killed, now >= deadline {
                timedOut = true
                kill()
            }
            // A jail whose processes hold a pipe open after pid 1 died is gone within moments;
            // past two seconds after a kill, stop waiting for its pipes.
            if let killedAt, exited, now - killedAt > .seconds(2) { break }
            var fds: [pollfd] = []
            if input >= 0 { fds.append(pollfd(fd: input, events: Int16(POLLOUT), revents: 0)) }
            for (fd, isOpen) in open where isOpen { fds.append(pollfd(fd: fd, events: Int16(POLLIN), revents: 0)) }
            if !exited { fds.append(pollfd(fd: warm.pidfd, events: Int16(POLLIN), revents: 0)) }
            let remaining = killed ? Duration.milliseconds(100) : deadline - now
            let milliseconds = Int32(clamping: max(1, remaining.components.seconds * 1000 + remaining.components.attoseconds / 1_000_000_000_000_000))
            let ready = poll(&fds, nfds_t(fds.count), milliseconds)
            if ready < 0, errno != EINTR { kill() }
            for entry in fds where entry.revents != 0 {
                if entry.fd == warm.pidfd {
                    var ended: Int32 = 0
                    if oneo_pidfd_wait(warm.pidfd, 0, &ended, &status) == 0, ended == 1 { exited = true }
                } else if entry.fd == input {
                    let count = code[written...].withUnsafeBytes { write(input, $0.baseAddress, min($0.count, 65_536)) }
                    if count > 0 { written += count }
                    if count < 0, errno != EAGAIN, errno != EINTR { written = code.count }
                    if written >= code.count || entry.revents & Int16(POLLERR | POLLHUP) != 0 {
                        close(input)
                        input = -1
                    }
                } else {
                    let count = buffer.withUnsafeMutableBytes { read(entry.fd, $0.baseAddress, $0.count) }
                    if count > 0 {
                        let bytes = buffer[0..<count]
                        if entry.fd == warm.report {
                            if report.count + count <= reportCap { report.append(contentsOf: bytes) } else { report.removeAll(); open[entry.fd] = false }
                        } else {
                            let isOutput = entry.fd == warm.output
                            let kept = isOutput ? stdout.count : stderr.count
                            let room = max(0, cap - kept)
                            if isOutput { stdout.append(contentsOf: bytes.prefix(room)) } else { stderr.append(contentsOf: bytes.prefix(room)) }
                            if count > room {
                                truncated = true
                                kill()
                            }
                        }
                    } else if count == 0 || (errno != EAGAIN && errno != EINTR) {
                        open[entry.fd] = false
                    }
                }
            }
        }
        if input >= 0 { close(input) }
        if !exited {
            kill()
            var ended: Int32 = 0
            _ = oneo_pidfd_wait(warm.pidfd, 1, &ended, &status)
        }
        for fd in [warm.pidfd, warm.output, warm.error, warm.report] { close(fd) }
        let elapsed = ContinuousClock.now - started
        return CodeRunResult(
            stdout: String(decoding: stdout, as: UTF8.self), stderr: String(decoding: stderr, as: UTF8.self),
            exitStatus: status >= 0 ? Int(status) : nil, signal: status < 0 ? Int(-status) : nil,
            timedOut: timedOut, truncated: truncated,
            durationMilliseconds: Int(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000),
            artifacts: (timedOut || truncated) ? [] : Self.artifacts(report)
        )
    }

    /// The report's files: `u16 name length, name, u32 size, bytes` each, checked against the
    /// caps and named safely; a malformed report yields what parsed before the fault.
    static func artifacts(_ report: [UInt8]) -> [CodeRunResult.Artifact] {
        var artifacts: [CodeRunResult.Artifact] = []
        var offset = 0
        var total = 0
        func take(_ count: Int) -> ArraySlice<UInt8>? {
            guard count >= 0, offset + count <= report.count else { return nil }
            defer { offset += count }
            return report[offset..<(offset + count)]
        }
        while artifacts.count < Bootstrap.artifactCount, let nameLength = take(2) {
            let length = Int(nameLength.first!) << 8 | Int(nameLength.last!)
            guard let name = take(length), let sizeBytes = take(4) else { break }
            let size = sizeBytes.reduce(0) { $0 << 8 | Int($1) }
            guard size <= Bootstrap.artifactBytes, total + size <= Bootstrap.artifactTotalBytes, let data = take(size) else { break }
            total += size
            let text = String(decoding: name, as: UTF8.self)
            guard JobArtifact.isSafeName(text) else { continue }
            artifacts.append(CodeRunResult.Artifact(name: text, mediaType: Self.mediaType(text), size: size, data: Data(data).base64EncodedString()))
        }
        return artifacts
    }


    static func mediaType(_ name: String) -> String {
        switch name.split(separator: ".").last?.lowercased() {
        case "png": "image/png"
        case "jpg", "jpeg": "image/jpeg"
        case "svg": "image/svg+xml"
        case "csv": "text/csv"
        case "txt", "md": "text/plain"
        case "json": "application/json"
        default: "application/octet-stream"
        }
    }
}
