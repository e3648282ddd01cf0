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
    public static func run(_ executable: String, _ arguments: [String], environment: [String: String] = [:], logFile: String) async throws -> String {
        let process = try ManagedProcess(executable, arguments, environment: environment, logFile: logFile)
        let status = try await process.waitForExit()
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

/// A TCP port that was free a moment ago on loopback.
public func freeLoopbackPort() throws -> Int {
    // Not `bind(0)`: that port comes from the ephemeral range, which the kernel also gives to the
    // outgoing connections of tests running alongside, so between our check and the child's own
    // bind it can be taken. Below the range (the Linux default starts at 32768) only explicit
    // binds land, and this process never hands out the same port twice.
    for _ in 0..<200 {
        let port = Int.random(in: 20_000..<32_000)
        guard handedOutPorts.withLock({ $0.insert(port).inserted }) else { continue }
        if loopbackPortIsFree(port) { return port }
    }
    throw CommandFailed(command: "bind", status: EADDRINUSE, output: "no free loopback port in 20000..<32000 after 200 tries")
}

private let handedOutPorts = Mutex<Set<Int>>([])

private func loopbackPortIsFree(_ port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    guard fd >= 0 else { return false }
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = UInt16(port).bigEndian
    let length = socklen_t(MemoryLayout<sockaddr_in>.size)
    return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) } } == 0
}

/// Shared between a process's termination handler and its `ManagedProcess`.
private final class ExitRecord: Sendable {
    let status = Mutex<Int32?>(nil)
}
