import CProcess
import Foundation
import NIOPosix
#if canImport(Glibc)
public import Glibc
#endif

/// The operator's side of the control socket: one request, one reply per connection.
public enum ControlClient {
    /// Sends `request` and waits up to `timeout` for the reply. Blocking socket calls run on
    /// NIO's thread pool.
    public static func send(_ request: ControlRequest, path: String, timeout: Duration) async throws -> ControlReply {
        try await NIOThreadPool.singleton.runIfActive {
            let socket = try Self.connect(path)
            _ = oneo_set_receive_timeout(socket.descriptor, Int32(min(86_400, max(1, (timeout / .seconds(1)).rounded(.up) + 1))))
            try socket.send(request)
            return try socket.receive(ControlReply.self)
        }
    }

    /// Whether a supervisor answers on `path` (a socket file left by a killed one does not).
    public static func isServing(path: String) -> Bool {
        (try? Self.connect(path)) != nil
    }

    static func connect(_ path: String) throws -> FrameSocket {
        guard var address = Self.address(path) else {
            throw ControlError(code: "control_socket", message: "\(path) is too long for a Unix socket path")
        }
        let descriptor = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard descriptor >= 0 else { throw ControlError(code: "control_socket", message: "socket(): \(String(cString: strerror(errno)))") }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { Glibc.connect(descriptor, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else {
            let reason = String(cString: strerror(errno))
            close(descriptor)
            throw ControlError(code: "not_running", message: "no supervisor answers on \(path) (\(reason)); is `oneo-ai serve` running with this --data-dir?")
        }
        return FrameSocket(descriptor: descriptor)
    }

    /// The socket address of `path`, or nil when it does not fit.
    public static func address(_ path: String) -> sockaddr_un? {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        let capacity = MemoryLayout.size(ofValue: address.sun_path)
        guard bytes.count < capacity else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            buffer.copyBytes(from: bytes)
            buffer[bytes.count] = 0
        }
        return address
    }
}
