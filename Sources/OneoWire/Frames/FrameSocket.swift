import CProcess
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One end of a Unix stream socket carrying frames, owning its file descriptor. Its calls block:
/// callers run them on a dedicated thread or `NIOThreadPool`, never on the cooperative pool.
public final class FrameSocket: Sendable {
    /// The descriptor on which every child finds its end of the supervisor's socketpair.
    public static let childDescriptor: Int32 = 3

    public let descriptor: Int32
    /// Whether descriptors may come with frames (the supervisor's channels). A socket that
    /// never carries one (tool calls, executors) reads without a control buffer: the kernel
    /// closes whatever a peer attaches, so a peer cannot fill our descriptor table.
    public let acceptsDescriptors: Bool
    /// Descriptors that arrived with frames (SCM_RIGHTS), oldest first, until a frame claims one.
    private let received = Mutex<[Int32]>([])

    public init(descriptor: Int32, acceptsDescriptors: Bool = true) {
        self.descriptor = descriptor
        self.acceptsDescriptors = acceptsDescriptors
    }

    deinit {
        close(self.descriptor)
        for descriptor in self.received.withLock({ $0 }) { close(descriptor) }
    }

    /// The oldest descriptor that came with a frame and is not yet claimed, now the caller's.
    public func takeDescriptor() -> Int32? {
        self.received.withLock { $0.isEmpty ? nil : $0.removeFirst() }
    }

    /// Closes every descriptor that came and was not claimed (one a failed frame brought), so
    /// that none can be handed on with a later frame.
    public func closeUnclaimedDescriptors() {
        for descriptor in self.received.withLock({ received in defer { received.removeAll() }; return received }) { close(descriptor) }
    }

    /// A blocking receive gives up after `seconds` (SO_RCVTIMEO), with an io error.
    public func setReceiveTimeout(seconds: Int) {
        _ = oneo_set_receive_timeout(self.descriptor, Int32(seconds))
    }

    /// A blocking send gives up after `seconds` (SO_SNDTIMEO), with an io error.
    public func setSendTimeout(seconds: Int) {
        _ = oneo_set_send_timeout(self.descriptor, Int32(seconds))
    }

    public func send(_ message: some Encodable) throws(WireError) {
        let bytes = try Frame.encode(message)
        var offset = 0
        while offset < bytes.count {
            let written = bytes[offset...].withUnsafeBytes { write(self.descriptor, $0.baseAddress, $0.count) }
            if written < 0 {
                if errno == EINTR { continue }
                throw WireError(.io(errno), detail: "write")
            }
            offset += written
        }
    }

    /// Sends a frame with `descriptor` attached (SCM_RIGHTS) to its first byte; the caller keeps
    /// its own copy of the descriptor and closes it.
    public func send(_ message: some Encodable, descriptor: Int32) throws(WireError) {
        let bytes = try Frame.encode(message)
        var offset = 0
        while offset < bytes.count {
            let written: Int = bytes[offset...].withUnsafeBytes { pointer in
                offset == 0
                    ? oneo_send_with_descriptor(self.descriptor, pointer.baseAddress, UInt(pointer.count), descriptor)
                    : Glibc.send(self.descriptor, pointer.baseAddress, pointer.count, Int32(MSG_NOSIGNAL))
            }
            if written < 0 {
                if errno == EINTR { continue }
                if errno == EAGAIN {
                    // The descriptor's send does not block: wait until the socket takes bytes.
                    var waiting = pollfd(fd: self.descriptor, events: Int16(POLLOUT), revents: 0)
                    guard poll(&waiting, 1, 10_000) > 0 else { throw WireError(.io(ETIMEDOUT), detail: "sendmsg") }
                    continue
                }
                throw WireError(.io(errno), detail: "sendmsg")
            }
            offset += written
        }
    }

    public func receive<Message: Decodable>(_ type: Message.Type, limit: Int = Frame.maximumSize) throws(WireError) -> Message {
        let header = try self.readExactly(4)
        let body = try self.readExactly(Frame.bodyLength(header: header, limit: limit))
        return try Frame.decode(type, body: body)
    }

    /// The same, given up (an io error, ETIMEDOUT) when the whole frame has not arrived by
    /// `deadline`, however slowly its bytes trickle in.
    public func receive<Message: Decodable>(_ type: Message.Type, limit: Int = Frame.maximumSize, before deadline: ContinuousClock.Instant) throws(WireError) -> Message {
        let header = try self.readExactly(4, before: deadline)
        let body = try self.readExactly(Frame.bodyLength(header: header, limit: limit), before: deadline)
        return try Frame.decode(type, body: body)
    }

    private func readExactly(_ count: Int, before deadline: ContinuousClock.Instant? = nil) throws(WireError) -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: count)
        var filled = 0
        while filled < count {
            if let deadline {
                let left = deadline - ContinuousClock.now
                // Past the deadline nothing more is read, even bytes already waiting.
                guard left > .zero else { throw WireError(.io(ETIMEDOUT), detail: "the frame did not arrive in time") }
                var waiting = pollfd(fd: self.descriptor, events: Int16(POLLIN), revents: 0)
                let milliseconds = Int32(clamping: left.components.seconds * 1000 + left.components.attoseconds / 1_000_000_000_000_000 + 1)
                let ready = poll(&waiting, 1, milliseconds)
                if ready < 0 {
                    if errno == EINTR { continue }
                    throw WireError(.io(errno), detail: "poll")
                }
                guard ready > 0 else { throw WireError(.io(ETIMEDOUT), detail: "the frame did not arrive in time") }
            }
            var passed: Int32 = -1
            let received = buffer[filled...].withUnsafeMutableBytes { bytes in
                self.acceptsDescriptors
                    ? oneo_receive_with_descriptor(self.descriptor, bytes.baseAddress, UInt(bytes.count), &passed)
                    : read(self.descriptor, bytes.baseAddress, bytes.count)
            }
            if passed >= 0 { self.received.withLock { $0.append(passed) } }
            if passed == -2 { throw WireError(.malformed, detail: "more than one descriptor with a frame") }
            if received == 0 { throw WireError(.closed, detail: "after \(filled) of \(count) bytes") }
            if received < 0 {
                if errno == EINTR { continue }
                throw WireError(.io(errno), detail: "read")
            }
            filled += Int(received)
        }
        return buffer
    }
}
