import CProcess
import Foundation
import Logging
import OneoCore
import OneoWire
import Supervisor
#if canImport(Glibc)
import Glibc
#endif

/// `oneo-ai bench --tools`: the code interpreter's round trip for `print(1)` beside a bare
/// `python3 -c 'print(1)'` in the same run; an echo tool call through the real router (and
/// straight to the executor, for comparison); the executor's and a warm jail's memory.
public struct ToolBenchmark {
    public struct Report: Codable, Sendable {
        public var calls: Int
        public var code_interpreter_p50_ms: Double
        public var code_interpreter_p99_ms: Double
        public var bare_python_p50_ms: Double
        public var bare_python_p99_ms: Double
        public var ratio_p50: Double
        public var echo_routed_p50_ms: Double
        public var echo_routed_p99_ms: Double
        public var echo_direct_p50_ms: Double
        public var executor_rss_kib: Int
        public var warm_jail_rss_kib: Int
        /// A web search through the router: a fresh jail per call, the connection brokered, the
        /// backend a local responder (so this is our overhead, not a search engine's).
        public var web_search_p50_ms: Double
        public var web_search_p99_ms: Double
        /// The launcher outside the jail, and the jail waiting for its call.
        public var web_search_launcher_rss_kib: Int
        public var web_search_jail_rss_kib: Int
    }

    let binDirectory: String
    let policy: String
    let calls: Int
    let progress: (String) -> Void

    public init(binDirectory: String, policy: String, calls: Int, progress: @escaping (String) -> Void) {
        self.binDirectory = binDirectory
        self.policy = policy
        self.calls = calls
        self.progress = progress
    }

    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// A running `oneo-tool` with our end of its socket.
    final class Executor {
        let pid: pid_t
        let socket: FrameSocket

        init(_ arguments: [String]) throws {
            var pair: [Int32] = [-1, -1]
            guard oneo_socketpair(&pair) == 0 else { throw Failure(description: "socketpair failed") }
            var argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
            var envp: [UnsafeMutablePointer<CChar>?] = [strdup("PATH=/usr/bin:/bin"), nil]
            defer { (argv + envp).forEach { free($0) } }
            var pid: pid_t = 0
            let result = oneo_spawn(arguments[0], &argv, &envp, pair[1], -1, &pid)
            close(pair[1])
            guard result == 0 else { throw Failure(description: "cannot start \(arguments[0]): errno \(result)") }
            self.pid = pid
            self.socket = FrameSocket(descriptor: pair[0])
            self.socket.setReceiveTimeout(seconds: 30)
        }

        deinit {
            kill(self.pid, SIGKILL)
            var status: Int32 = 0
            waitpid(self.pid, &status, 0)
        }
    }

    public func run() throws -> Report {
        let tool = self.binDirectory + "/oneo-tool"
        let identity = getuid() == 0 ? ["--sandbox-uid", "61001", "--sandbox-gid", "61001"] : []
        self.progress("code interpreter: \(self.calls) calls of print(1)…")
        let interpreter = try Executor([tool, "code_interpreter", "--policy", self.policy, "--pool", "2"] + identity)
        var interpreterTimes: [Double] = []
        for index in 0..<(self.calls + 5) {
            let started = ContinuousClock.now
            try interpreter.socket.send(ToolRequest(id: "\(index)", tool: "code_interpreter", arguments: ["code": "print(1)"]))
            let answer = try interpreter.socket.receive(ToolResponse.self)
            guard answer.result?["stdout"] == "1\n" else { throw Failure(description: "the code interpreter answered \(answer)") }
            if index >= 5 { interpreterTimes.append(Self.milliseconds(ContinuousClock.now - started)) }
        }
        let executorRSS = Self.rss(interpreter.pid)
        let warmRSS = Self.children(of: interpreter.pid).map(Self.rss).max() ?? 0

        self.progress("bare python3: \(self.calls) runs of python3 -c 'print(1)'…")
        var bareTimes: [Double] = []
        for _ in 0..<self.calls {
            let started = ContinuousClock.now
            let process = Process()
            process.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
            process.arguments = ["-c", "print(1)"]
            process.standardOutput = FileHandle.nullDevice
            try process.run()
            process.waitUntilExit()
            bareTimes.append(Self.milliseconds(ContinuousClock.now - started))
        }

        self.progress("echo: \(self.calls) calls through the router and straight…")
        let echo = try Executor([tool, "echo"])
        var directTimes: [Double] = []
        for index in 0..<self.calls {
            let started = ContinuousClock.now
            try echo.socket.send(ToolRequest(id: "\(index)", tool: "echo", arguments: ["n": .integer(Int64(index))]))
            _ = try echo.socket.receive(ToolResponse.self)
            directTimes.append(Self.milliseconds(ContinuousClock.now - started))
        }
        let router = Self.router()
        let routed = try Executor([tool, "echo"])
        let processor = try Self.processor(of: router, serving: "echo", by: routed, tenant: 1)
        var routedTimes: [Double] = []
        for index in 0..<self.calls {
            let ticket = router.signer.ticket(tenant: TenantID(1), job: JobID(Int64(index + 1)), attempt: 1, tools: ["echo"], validFor: .seconds(60))
            let started = ContinuousClock.now
            try processor.send(ToolCallFrame(id: "\(index)", job: JobID(Int64(index + 1)), attempt: 1, tool: "echo", arguments: ["n": .integer(Int64(index))], ticket: ticket))
            let answer = try processor.receive(ToolResponse.self)
            guard answer.error == nil else { throw Failure(description: "the router refused the echo: \(answer.error ?? "")") }
            routedTimes.append(Self.milliseconds(ContinuousClock.now - started))
        }
        let searches = min(self.calls, 200)
        self.progress("web search: \(searches) calls through the router, one jail each…")
        let backend = try SearchResponder()
        let policies = URL(fileURLWithPath: self.policy).deletingLastPathComponent()
        let searcher = try Executor([tool, "web_search", "--policy", policies.appendingPathComponent("web_search.policy").path, "--backend", "http://127.0.0.1:\(backend.port)"] + identity)
        let searchRouter = Self.router(searchBackend: "http://127.0.0.1:\(backend.port)")
        searchRouter.configure("web_search", egress: ["search-backend"], timeout: .seconds(15))
        let searchProcessor = try Self.processor(of: searchRouter, serving: "web_search", by: searcher, tenant: 2)
        var searchTimes: [Double] = []
        for index in 0..<(searches + 3) {
            let ticket = searchRouter.signer.ticket(tenant: TenantID(2), job: JobID(Int64(index + 1)), attempt: 1, tools: ["web_search"], validFor: .seconds(60))
            let started = ContinuousClock.now
            try searchProcessor.send(ToolCallFrame(id: "\(index)", job: JobID(Int64(index + 1)), attempt: 1, tool: "web_search", arguments: ["query": "bench"], ticket: ticket))
            let answer = try searchProcessor.receive(ToolResponse.self)
            guard answer.error == nil, answer.result?["results"]?.arrayValue?.count == 1 else { throw Failure(description: "the web search answered \(answer)") }
            if index >= 3 { searchTimes.append(Self.milliseconds(ContinuousClock.now - started)) }
        }
        let launcherRSS = Self.rss(searcher.pid)
        let searchJailRSS = Self.children(of: searcher.pid).map(Self.rss).max() ?? 0

        let ci = Self.percentiles(interpreterTimes), bare = Self.percentiles(bareTimes), direct = Self.percentiles(directTimes), via = Self.percentiles(routedTimes)
        let search = Self.percentiles(searchTimes)
        return Report(
            calls: self.calls, code_interpreter_p50_ms: ci.p50, code_interpreter_p99_ms: ci.p99, bare_python_p50_ms: bare.p50, bare_python_p99_ms: bare.p99,
            ratio_p50: ci.p50 / bare.p50, echo_routed_p50_ms: via.p50, echo_routed_p99_ms: via.p99, echo_direct_p50_ms: direct.p50,
            executor_rss_kib: executorRSS, warm_jail_rss_kib: warmRSS,
            web_search_p50_ms: search.p50, web_search_p99_ms: search.p99, web_search_launcher_rss_kib: launcherRSS, web_search_jail_rss_kib: searchJailRSS
        )
    }

    /// A real router, without limits or logs.
    static func router(searchBackend: String? = nil) -> ToolRouter {
        ToolRouter(logger: Logger(label: "oneo.bench.router", factory: { _ in SwiftLogNoOpLogHandler() }), callsPerMinute: 1_000_000, searchBackend: searchBackend)
    }

    /// A processor's end of a connection to `router`, whose `tool` is served by `executor`.
    static func processor(of router: ToolRouter, serving tool: String, by executor: Executor, tenant: Int64) throws -> FrameSocket {
        router.executorStarted(tool: tool, descriptor: dup(executor.socket.descriptor), pid: executor.pid)
        var pair: [Int32] = [-1, -1]
        guard oneo_socketpair(&pair) == 0 else { throw Failure(description: "socketpair failed") }
        router.attach(pair[1], tenant: TenantID(tenant), processor: "bench-\(tool)")
        let processor = FrameSocket(descriptor: pair[0])
        processor.setReceiveTimeout(seconds: 30)
        return processor
    }

    static func milliseconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) * 1000 + Double(duration.components.attoseconds) / 1e15
    }

    static func percentiles(_ values: [Double]) -> (p50: Double, p99: Double) {
        let sorted = values.sorted()
        guard !sorted.isEmpty else { return (0, 0) }
        return (sorted[sorted.count / 2], sorted[min(sorted.count - 1, Int(Double(sorted.count) * 0.99))])
    }

    static func rss(_ pid: pid_t) -> Int {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") }) else { return 0 }
        return Int(line.split(whereSeparator: { $0 == " " || $0 == "\t" }).dropFirst().first ?? "") ?? 0
    }

    /// Direct children of a process (its warm jails' first processes).
    static func children(of pid: pid_t) -> [pid_t] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap(Int32.init).filter { child in
            guard let stat = try? String(contentsOfFile: "/proc/\(child)/stat", encoding: .utf8), let close = stat.lastIndex(of: ")") else { return false }
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            return fields.count > 2 && Int32(fields[1]) == pid
        }
    }
}

/// A search backend for the benchmark: one JSON answer to every request, on a loopback port, on
/// a thread of its own (blocking sockets), one connection at a time.
final class SearchResponder: @unchecked Sendable {
    let descriptor: Int32
    let port: Int

    init() throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) { pointer in
            pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                bind(fd, raw, length) == 0 && listen(fd, 16) == 0 && getsockname(fd, raw, &length) == 0
            }
        }
        guard fd >= 0, bound else { throw ToolBenchmark.Failure(description: "the search responder could not listen") }
        self.descriptor = fd
        self.port = Int(UInt16(bigEndian: address.sin_port))
        let body = #"{"results":[{"title":"Bench","url":"https://example.com/","content":"A result."}]}"#
        let response = Array("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\nConnection: close\r\n\r\n\(body)".utf8)
        let thread = Thread {
            var buffer = [UInt8](repeating: 0, count: 4096)
            while true {
                let connection = accept(fd, nil, nil)
                guard connection >= 0 else { return }
                // The request's head, then the answer; the client closes after it.
                var seen: [UInt8] = []
                while !seen.suffix(4).elementsEqual([13, 10, 13, 10]) {
                    let count = read(connection, &buffer, buffer.count)
                    guard count > 0 else { break }
                    seen += buffer[0..<count]
                }
                _ = response.withUnsafeBytes { write(connection, $0.baseAddress, $0.count) }
                close(connection)
            }
        }
        thread.start()
    }

    deinit {
        shutdown(self.descriptor, Int32(SHUT_RDWR))
        close(self.descriptor)
    }
}
