import Foundation
import Glibc

/// A plain TCP connection to the API, for what an HTTP client library would not do: hold a
/// connection idle, send half a request, or count how many the server lets stay open. Blocking
/// calls with short timeouts; a test owns each connection within its own task.
public final class RawHTTPConnection {
    private var descriptor: Int32

    public init(port: Int) throws {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw POSIXError(.init(rawValue: errno) ?? .EIO) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else {
            let code = errno
            Glibc.close(fd)
            throw POSIXError(.init(rawValue: code) ?? .ECONNREFUSED)
        }
        self.descriptor = fd
    }

    deinit { self.close() }

    public func send(_ text: String) throws {
        let bytes = Array(text.utf8)
        var sent = 0
        while sent < bytes.count {
            let count = bytes[sent...].withUnsafeBytes { Glibc.send(self.descriptor, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw POSIXError(.init(rawValue: errno) ?? .EPIPE) }
            sent += count
        }
    }

    /// What arrives within `milliseconds`, and whether the server closed the connection (or
    /// reset it) by then.
    public func read(waiting milliseconds: Int32) -> (text: String, closed: Bool) {
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        var remaining = milliseconds
        let started = ContinuousClock.now
        while remaining > 0 {
            var poller = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
            guard poll(&poller, 1, remaining) > 0 else { break }
            let count = buffer.withUnsafeMutableBytes { recv(self.descriptor, $0.baseAddress, $0.count, 0) }
            if count <= 0 { return (String(decoding: received, as: UTF8.self), true) }
            received.append(contentsOf: buffer[0..<count])
            let elapsed = ContinuousClock.now - started
            remaining = milliseconds - Int32(elapsed.components.seconds * 1000 + elapsed.components.attoseconds / 1_000_000_000_000_000)
        }
        return (String(decoding: received, as: UTF8.self), false)
    }

    public func close() {
        if self.descriptor >= 0 {
            Glibc.close(self.descriptor)
            self.descriptor = -1
        }
    }
}
