import CProcess
import Foundation
import Glibc
import Logging
import OneoCore
import OneoTesting
import OneoWire
import Supervisor
import Testing

/// The supervisor's router with real executors behind it: tickets, one call at a time per
/// tenant, the bounded wait for a busy executor, and a dead executor answered, not hung on.
@Suite("tool router", .serialized, .enabled(if: ToolExecutor.jailsAvailable, ToolExecutor.skipReason), .timeLimit(.minutes(2)))
struct ToolRouterTests {
    /// Not the escape suite's: it counts leftover processes of its own uid.
    static let sandboxUID = 61_002

    /// A processor's end of a router connection for `tenant`.
    static func connect(_ router: ToolRouter, tenant: Int64, name: String) -> FrameSocket {
        var pair: [Int32] = [-1, -1]
        _ = oneo_socketpair(&pair)
        router.attach(pair[1], tenant: TenantID(tenant), processor: name)
        let socket = FrameSocket(descriptor: pair[0], acceptsDescriptors: false)
        socket.setReceiveTimeout(seconds: 30)
        return socket
    }

    static func call(_ socket: FrameSocket, _ router: ToolRouter, tenant: Int64, job: Int64, code: String, id: String = "1") throws -> ToolResponse {
        let ticket = router.signer.ticket(tenant: TenantID(tenant), job: JobID(job), attempt: 1, tools: ["code_interpreter"], validFor: .seconds(60))
        try socket.send(ToolCallFrame(id: id, job: JobID(job), attempt: 1, tool: "code_interpreter", arguments: ["code": .string(code)], ticket: ticket))
        return try socket.receive(ToolResponse.self)
    }

    @Test("a ticket for another tenant is refused; a busy executor makes a waiting call give up in time; a second call of a busy tenant is refused")
    func admission() throws {
        let router = ToolRouter(logger: Logger(label: "test.router"), longestWait: .milliseconds(500))
        let executor = try ToolExecutor(timeoutMilliseconds: 5_000, pool: 2, sandboxUID: Self.sandboxUID)
        router.executorStarted(tool: "code_interpreter", descriptor: fcntl(executor.socket.descriptor, F_DUPFD_CLOEXEC, 3), pid: executor.pid)

        let a = Self.connect(router, tenant: 1, name: "processor:a")
        let b = Self.connect(router, tenant: 2, name: "processor:b")
        #expect(try Self.call(a, router, tenant: 1, job: 10, code: "print(6 * 7)").result?["stdout"] == "42\n")

        // Tenant 2 carrying tenant 1's ticket: refused before any executor is touched.
        let stolen = router.signer.ticket(tenant: TenantID(1), job: JobID(10), attempt: 1, tools: ["code_interpreter"], validFor: .seconds(60))
        try b.send(ToolCallFrame(id: "x", job: JobID(10), attempt: 1, tool: "code_interpreter", arguments: ["code": "print(1)"], ticket: stolen))
        #expect(try b.receive(ToolResponse.self).error?.contains("not allowed") == true)

        // Tenant 1 holds the one executor (its code running, as the file it writes first shows);
        // tenant 2 waits half a second, then hears it was busy; tenant 1's second connection is
        // refused while its first call runs.
        let created = try #require(Waiting.Creation(in: EscapeSuiteTests.processes(ofUID: Self.sandboxUID).map { "/proc/\($0)/root/work" }))
        let slow = Thread { _ = try? Self.call(a, router, tenant: 1, job: 11, code: "open('started', 'w').close()\nimport time\ntime.sleep(2)", id: "slow") }
        slow.start()
        #expect(created.wait(within: 10), "the slow call's code ran")
        let busy = try Self.call(b, router, tenant: 2, job: 20, code: "print(2)")
        #expect(busy.error?.contains("stayed busy") == true, "\(busy)")
        let again = Self.connect(router, tenant: 1, name: "processor:a2")
        #expect(try Self.call(again, router, tenant: 1, job: 12, code: "print(3)").error?.contains("one at a time") == true)
    }

    @Test("an executor that dies mid-call is answered with an error and dropped; the next call is told none runs")
    func deadExecutor() throws {
        let router = ToolRouter(logger: Logger(label: "test.router"))
        let executor = try ToolExecutor(timeoutMilliseconds: 5_000, pool: 2, sandboxUID: Self.sandboxUID)
        router.executorStarted(tool: "code_interpreter", descriptor: fcntl(executor.socket.descriptor, F_DUPFD_CLOEXEC, 3), pid: executor.pid)
        let socket = Self.connect(router, tenant: 1, name: "processor:a")
        // Killed once the call's code runs: one of the warm jails waiting (a pool of two, one of
        // them spent on a first call, so the other surely waits) gets the file the code writes,
        // which an inotify watch on every waiting jail's /work reports.
        #expect(try Self.call(socket, router, tenant: 1, job: 9, code: "print(1)").result?["stdout"] == "1\n")
        let warm = EscapeSuiteTests.processes(ofUID: Self.sandboxUID)
        let created = try #require(Waiting.Creation(in: warm.map { "/proc/\($0)/root/work" }))
        let pid = executor.pid
        let killer = Thread {
            _ = created.wait(within: 10)
            kill(pid, SIGKILL)
        }
        killer.start()
        let answer = try Self.call(socket, router, tenant: 1, job: 1, code: "open('started', 'w').close()\nimport time\ntime.sleep(5)")
        #expect(answer.error?.contains("failed") == true, "\(answer)")
        #expect(try Self.call(socket, router, tenant: 1, job: 2, code: "print(1)").error?.contains("not running") == true)
    }

    /// A call of `tool` by `tenant` through `router` to an executor this test plays (our end of a
    /// socketpair, which may take descriptors): the executor's end, the processor's, and the
    /// request as the executor got it.
    static func scriptedCall(_ router: ToolRouter, tool: String, tenant: Int64, arguments: JSONValue) throws -> (FrameSocket, FrameSocket, ToolRequest) {
        var pair: [Int32] = [-1, -1]
        _ = oneo_socketpair(&pair)
        let executor = FrameSocket(descriptor: pair[0], acceptsDescriptors: true)
        executor.setReceiveTimeout(seconds: 10)
        // No process behind it: the pid names none, so dropping it kills nothing.
        router.executorStarted(tool: tool, descriptor: pair[1], pid: getpid() + 1_000_000)
        let processor = Self.connect(router, tenant: tenant, name: "processor:\(tool)")
        let job = JobID(tenant * 10)
        let ticket = router.signer.ticket(tenant: TenantID(tenant), job: job, attempt: 1, tools: [tool], validFor: .seconds(60))
        try processor.send(ToolCallFrame(id: "c", job: job, attempt: 1, tool: tool, arguments: arguments, ticket: ticket))
        return (executor, processor, try executor.receive(ToolRequest.self))
    }

    @Test("egress: the router connects an executor only to what its policy allows for the call, hands the connection over, refuses other hosts, and kills an executor that keeps asking")
    func egress() throws {
        // A listener standing for the search backend, and one the policy does not name.
        func listener() throws -> (descriptor: Int32, port: Int) {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
            var address = sockaddr_in(sin_family: sa_family_t(AF_INET), sin_port: 0, sin_addr: in_addr(s_addr: inet_addr("127.0.0.1")), sin_zero: (0, 0, 0, 0, 0, 0, 0, 0))
            var length = socklen_t(MemoryLayout<sockaddr_in>.size)
            try withUnsafeMutablePointer(to: &address) { pointer in
                try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { raw in
                    guard bind(fd, raw, length) == 0, listen(fd, 4) == 0, getsockname(fd, raw, &length) == 0 else { throw ToolFailureForTest() }
                }
            }
            return (fd, Int(UInt16(bigEndian: address.sin_port)))
        }
        let backend = try listener()
        let other = try listener()
        defer { close(backend.descriptor); close(other.descriptor) }
        let router = ToolRouter(logger: Logger(label: "test.router"), searchBackend: "http://127.0.0.1:\(backend.port)")
        router.configure("web_search", egress: ["search-backend"], timeout: .seconds(5))
        let (executor, processor, request) = try Self.scriptedCall(router, tool: "web_search", tenant: 7, arguments: ["query": "q"])
        #expect(request.credential == nil && request.files == nil, "a search carries no key and no grant")
        // Allowed: the backend, connected by the router, the socket handed over.
        try executor.send(EgressRequest(id: request.id, egress: .init(host: "127.0.0.1", port: backend.port)))
        let granted = try executor.receive(EgressGrant.self)
        #expect(granted.error == nil && granted.address == "127.0.0.1", "\(granted)")
        let connection = try #require(executor.takeDescriptor())
        var peer = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &peer) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getpeername(connection, $0, &length) } }
        #expect(Int(UInt16(bigEndian: peer.sin_port)) == backend.port, "the handed socket is connected to the backend")
        close(connection)
        // Refused: another port on the same host, and a name the policy does not give.
        for (host, port) in [("127.0.0.1", other.port), ("169.254.169.254", 80), ("localhost", backend.port)] {
            try executor.send(EgressRequest(id: request.id, egress: .init(host: host, port: port)))
            let refused = try executor.receive(EgressGrant.self)
            #expect(refused.error?.contains("not a place") == true, "\(host):\(port) \(refused)")
            #expect(executor.takeDescriptor() == nil)
        }
        // Asking past the allowance ends the call with an error, and the executor is dropped.
        var answered: ToolResponse?
        for _ in 0..<4 {
            try? executor.send(EgressRequest(id: request.id, egress: .init(host: "127.0.0.1", port: backend.port)))
            guard let grant = try? executor.receive(EgressGrant.self) else { break }
            if let descriptor = executor.takeDescriptor() { close(descriptor) }
            _ = grant
        }
        answered = try processor.receive(ToolResponse.self)
        #expect(answered?.error?.contains("failed") == true, "\(String(describing: answered))")
        #expect(!router.availableTools.contains("web_search"), "the executor that stalled is no longer used")

        // A tenant's provider on a private address: refused unless the operator allowed it.
        let images = ToolRouter(logger: Logger(label: "test.router"))
        images.configure("image_generation", egress: ["tenant-provider"], timeout: .seconds(5))
        images.setProvider(TenantID(8), ToolCredential(baseURL: "http://127.0.0.1:\(backend.port)/v1", key: "k"))
        let (imageExecutor, tenant8, imageRequest) = try Self.scriptedCall(images, tool: "image_generation", tenant: 8, arguments: ["prompt": "p"])
        #expect(imageRequest.credential?.key == "k", "the tenant's key, for this request")
        try imageExecutor.send(EgressRequest(id: imageRequest.id, egress: .init(host: "127.0.0.1", port: backend.port)))
        let privateRefused = try imageExecutor.receive(EgressGrant.self)
        #expect(privateRefused.error?.contains("private address") == true, "\(privateRefused)")
        #expect(imageExecutor.takeDescriptor() == nil)
        try imageExecutor.send(ToolResponse(id: imageRequest.id, error: "no connection"))
        #expect(try tenant8.receive(ToolResponse.self).error == "no connection")
    }
}

struct ToolFailureForTest: Error {}
