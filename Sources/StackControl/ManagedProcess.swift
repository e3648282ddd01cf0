import Foundation
import CProcess
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A real process the benchmark or a test starts (serve, the simulator, a CLI command, pgbench),
/// spawned by the project's one spawn helper (clean signal state, own process group), its output
/// kept in a file that a failing run can print, and reaped by a thread of its own.
public final class ManagedProcess: Sendable {
    public let pid: Int32
    public let name: String
    public let logFile: String
    private let exit = ExitRecord()

    public init(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logFile: String) throws {
        self.logFile = logFile
        self.name = URL(fileURLWithPath: executable).lastPathComponent
        var env = ProcessInfo.processInfo.environment
        env["DATABASE_URL"] = nil
        env["REDIS_URL"] = nil
        for (key, value) in environment { env[key] = value }
        let output = open(logFile, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard output >= 0 else { throw CommandFailed(command: executable, status: errno, output: "cannot open \(logFile)") }
        defer { close(output) }
        let argv = ([executable] + arguments).map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            argv.forEach { free($0) }
            envp.forEach { free($0) }
        }
        var pid: pid_t = 0
        let result = oneo_spawn(executable, argv, envp, -1, output, &pid)
        guard result == 0 else { throw CommandFailed(command: executable, status: result, output: String(cString: strerror(result))) }
        self.pid = pid
        let record = self.exit
        let child = pid
        Thread.detachNewThread {
            var status: Int32 = 0
            while waitpid(child, &status, 0) < 0 && errno == EINTR {}
            let code = status & 0x7F == 0 ? (status >> 8) & 0xFF : 128 + (status & 0x7F)
            record.status.withLock { $0 = code }
        }
    }

    public var isRunning: Bool { self.exit.status.withLock { $0 == nil } }

    public var output: String { (try? String(contentsOfFile: self.logFile, encoding: .utf8)) ?? "" }

    public func signal(_ signal: Int32) { kill(self.pid, signal) }

    /// Waits for the process to exit and returns its status.
    public func waitForExit(timeout: Duration = .seconds(60)) async throws -> Int32 {
        try await waitUntil("\(self.name) (pid \(self.pid)) to exit", timeout: timeout) { !self.isRunning }
        return self.exit.status.withLock { $0 ?? -1 }
    }

    /// SIGTERM, then SIGKILL if it has not exited within the grace period.
    public func stop(grace: Duration = .seconds(20)) async -> Int32? {
        guard self.isRunning else { return self.exit.status.withLock { $0 } }
        self.signal(SIGTERM)
        if let status = try? await self.waitForExit(timeout: grace) { return status }
        self.signal(SIGKILL)
        return try? await self.waitForExit(timeout: .seconds(5))
    }

    /// Runs a command to completion and returns its output; throws when it exits non-zero.
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logFile: String, timeout: Duration = .seconds(60)) async throws -> String {
        let process = try ManagedProcess(executable, arguments, environment: environment, logFile: logFile)
        let status = try await process.waitForExit(timeout: timeout)
        guard status == 0 else { throw CommandFailed(command: ([executable] + arguments).joined(separator: " "), status: status, output: process.output) }
        return process.output
    }
}

public struct CommandFailed: Error, CustomStringConvertible {
    public let command: String
    public let status: Int32
    public let output: String

    public init(command: String, status: Int32, output: String) {
        self.command = command
        self.status = status
        self.output = output
    }

    public var description: String { "`\(self.command)` exited \(self.status):\n\(self.output)" }
}


/// Shared between a process's termination handler and its `ManagedProcess`.
private final class ExitRecord: Sendable {
    let status = Mutex<Int32?>(nil)
}
