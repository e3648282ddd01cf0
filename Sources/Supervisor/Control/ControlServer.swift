import CProcess
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// The control socket: `<data-dir>/run/oneo-ai.sock`, mode 0600 in a 0700 directory, and every
/// connection's peer uid checked (SO_PEERCRED) against ours, so only the account that runs serve
/// (or root) can act on it. One framed JSON request, one framed reply per connection. Blocking
/// accept and reads run on threads of their own, never on the cooperative pool.
final class ControlServer: Sendable {
    private let descriptor: Int32
    private let path: String
    private let closed = Atomic<Bool>(false)

    /// Reads from a silent client give up after this long.
    static let readTimeoutSeconds = 5

    private init(descriptor: Int32, path: String) {
        self.descriptor = descriptor
        self.path = path
    }

    static func start(path: String, supervisor: Supervisor, logger: Logger) throws -> ControlServer {
        if ControlClient.isServing(path: path) {
            throw ControlError(code: "already_serving", message: "another supervisor answers on \(path); one serve per data directory")
        }
        unlink(path)
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw ControlError(code: "control_socket", message: "socket(): \(String(cString: strerror(errno)))") }
        guard var address = ControlClient.address(path) else {
            Glibc.close(descriptor)
            throw ControlError(code: "control_socket", message: "\(path) is longer than a Unix socket path may be; use a shorter --data-dir")
        }
        // Created 0600 from the start: no window in which another user could connect.
        let previous = umask(0o177)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        umask(previous)
        guard bound == 0, listen(descriptor, 16) == 0 else {
            let reason = String(cString: strerror(errno))
            Glibc.close(descriptor)
            throw ControlError(code: "control_socket", message: "cannot listen on \(path): \(reason)")
        }
        let server = ControlServer(descriptor: descriptor, path: path)
        let thread = Thread { server.acceptLoop(supervisor: supervisor, logger: logger) }
        thread.name = "oneo-control"
        thread.start()
        return server
    }

    func close() {
        guard !self.closed.exchange(true, ordering: .relaxed) else { return }
        unlink(self.path)
        shutdown(self.descriptor, Int32(SHUT_RDWR))
    }

    private func acceptLoop(supervisor: Supervisor, logger: Logger) {
        while !self.closed.load(ordering: .relaxed) {
            let connection = oneo_accept(self.descriptor)
            if connection < 0 {
                if errno == EINTR || errno == ECONNABORTED { continue }
                break
            }
            let thread = Thread { Self.serve(FrameSocket(descriptor: connection), supervisor: supervisor, logger: logger) }
            thread.start()
        }
        Glibc.close(self.descriptor)
    }

    private static func serve(_ connection: FrameSocket, supervisor: Supervisor, logger: Logger) {
        var peer: (uid: uid_t, pid: pid_t) = (uid_t.max, 0)
        guard oneo_peer_credentials(connection.descriptor, &peer.uid, &peer.pid) == 0, peer.uid == geteuid() || peer.uid == 0 else {
            logger.warning("control connection refused: peer is another user", metadata: ["peer.uid": "\(peer.uid)", "peer.pid": "\(peer.pid)"])
            try? connection.send(ControlReply(error: ControlError(code: "forbidden", message: "only uid \(geteuid()) may control this supervisor")))
            return
        }
        _ = oneo_set_receive_timeout(connection.descriptor, Int32(Self.readTimeoutSeconds))
        let reply: ControlReply
        do {
            let request = try connection.receive(ControlRequest.self, limit: ControlRequest.maximumSize)
            logger.info("control request", metadata: ["command": "\(request.command.rawValue)", "tenant": "\(request.tenant ?? "-")", "peer.pid": "\(peer.pid)"])
            reply = Self.waitFor { await supervisor.handle(request) }
        } catch {
            logger.warning("bad control request", metadata: ["error": "\(error)", "peer.pid": "\(peer.pid)"])
            reply = ControlReply(error: ControlError(code: "bad_request", message: "\(error)"))
        }
        try? connection.send(reply)
    }

    /// Runs async work from this dedicated thread and waits for it (a blocking wait, but on our
    /// own thread, never on the cooperative pool).
    private static func waitFor<Result: Sendable>(_ body: @escaping @Sendable () async -> Result) -> Result {
        let box = Mutex<Result?>(nil)
        let done = DispatchSemaphore(value: 0)
        Task {
            let result = await body()
            box.withLock { $0 = result }
            done.signal()
        }
        done.wait()
        return box.withLock { $0! }
    }
}
