import CProcess
import Foundation
import Glibc
import OneoTesting
import OneoWire
import Testing

/// A real `oneo-tool` process on the other end of a real socketpair, as the supervisor will run
/// it. Calls block (these tests are synchronous); a stuck executor fails the test after 30 s.
final class ToolExecutor {
    let pid: pid_t
    let socket: FrameSocket
    let logPath: String
    private var nextID = 0

    /// The host identity of the jails these tests start: unprivileged, used by nothing else.
    static let sandboxUID = 61_000

    /// Whether this machine can make the jail: user namespaces on, and either root or allowed
    /// to create them unprivileged.
    static var jailsAvailable: Bool {
        let maximum = (try? String(contentsOfFile: "/proc/sys/user/max_user_namespaces", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        guard let maximum, let count = Int(maximum), count > 0 else { return false }
        if getuid() == 0 { return true }
        let unprivileged = (try? String(contentsOfFile: "/proc/sys/kernel/unprivileged_userns_clone", encoding: .utf8))?.trimmingCharacters(in: .whitespacesAndNewlines)
        return unprivileged != "0"
    }

    static let skipReason: Comment = "the jail needs user namespaces (root, or kernel.unprivileged_userns_clone=1 and user.max_user_namespaces > 0); this machine has none"

    /// `sandboxUID`: the jails' host uid; suites that run at once use different ones, so that
    /// one's count of leftover processes never sees the other's jails.
    init(tool: String = "code_interpreter", policy: String? = nil, timeoutMilliseconds: Int = 2_000, pool: Int = 1, sandboxUID: Int = ToolExecutor.sandboxUID) throws {
        var pair: [Int32] = [-1, -1]
        guard oneo_socketpair(&pair) == 0 else { throw POSIXError(.EIO) }
        let directory = try TestServices.temporaryDirectory("oneo-tool")
        self.logPath = directory + "/executor.log"
        let log = open(self.logPath, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o600)
        defer { close(log) }
        let arguments = [
            TestServices.executable("oneo-tool"), tool, "--policy", policy ?? SandboxFiles.policyURL(tool).path,
            "--sandbox-uid", "\(sandboxUID)", "--sandbox-gid", "\(sandboxUID)",
            "--timeout-ms", "\(timeoutMilliseconds)", "--pool", "\(pool)",
        ]
        var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
        defer { (argv + envp).forEach { free($0) } }
        var pid: pid_t = 0
        let result = oneo_spawn(arguments[0], &argv, &envp, pair[1], log, &pid)
        close(pair[1])
        guard result == 0 else {
            close(pair[0])
            throw POSIXError(POSIXErrorCode(rawValue: result) ?? .EIO)
        }
        _ = oneo_set_receive_timeout(pair[0], 30)
        self.pid = pid
        self.socket = FrameSocket(descriptor: pair[0])
    }

    deinit {
        kill(self.pid, SIGKILL)
        var status: Int32 = 0
        waitpid(self.pid, &status, 0)
    }

    func call(_ arguments: JSONValue, tool: String = "code_interpreter") throws -> ToolResponse {
        self.nextID += 1
        try self.socket.send(ToolRequest(id: "\(self.nextID)", tool: tool, arguments: arguments))
        return try self.socket.receive(ToolResponse.self)
    }

    /// Runs code; the answer must be a result, not an error.
    func run(_ code: String) throws -> CodeRunResult {
        let response = try self.call(["code": .string(code)])
        guard let result = response.result else { throw ExecutorFailure(message: "no result: \(response.error ?? "-")") }
        return try JSONDecoder().decode(CodeRunResult.self, from: Data(try JSONEncoder().encode(result)))
    }

    /// Sends raw bytes (for malformed frames).
    func sendRaw(_ bytes: [UInt8]) {
        _ = bytes.withUnsafeBytes { write(self.socket.descriptor, $0.baseAddress, $0.count) }
    }

    /// Waits for the executor to exit (its status, or -signal).
    func waitForExit(within seconds: Double = 10) -> Int32? {
        guard Waiting.forExit(of: [self.pid], within: seconds).isEmpty else { return nil }
        var status: Int32 = 0
        guard waitpid(self.pid, &status, 0) == self.pid else { return nil }
        let signal = status & 0x7F
        return signal == 0 ? (status >> 8) & 0xFF : -signal
    }

    var log: String { (try? String(contentsOfFile: self.logPath, encoding: .utf8)) ?? "" }

    struct ExecutorFailure: Error, CustomStringConvertible {
        let message: String
        var description: String { self.message }
    }
}
