import CProcess
import Foundation
import OneoWire
import OneoStore
import OneoCore
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// One thread in poll(2) over every child's socket and output pipe: frames from children go to
/// their handler, output lines go to our stderr tagged with the child's name, and frames to
/// children wait in a queue per child until its socket takes them (never blocking the
/// supervisor, never dropped while the child reads). One thread for all children, however many
/// tenants are active.
final class ChildIO: Sendable {
    typealias FrameHandler = @Sendable (ChildMessage?) -> Void

    private enum Kind: Sendable {
        /// Frames from the child. Holding the socket keeps its descriptor open (and its number
        /// ours) until we have seen its end, whatever the supervisor has dropped meanwhile.
        case channel(FrameSocket, FrameHandler)
        /// The child's stdout and stderr; we own and close this descriptor.
        case output(Int32)
    }

    private struct Source: Sendable {
        let name: String
        let kind: Kind
        var buffer: [UInt8] = []
    }

    /// Sources registered since the I/O thread last looked.
    private let pending = Mutex<[Source]>([])
    /// Frames on their way to children, by socket descriptor; a frame's passed descriptor (ours,
    /// a duplicate) goes with its first byte and is closed once sent.
    private let outgoing = Mutex<Outgoing>(Outgoing())

    private struct Outgoing {
        /// Sockets being watched (registered at once by `watchFrames`, removed when the child's
        /// socket ends): a frame for any other socket is refused.
        var registered: Set<Int32> = []
        var boxes: [Int32: Outbox] = [:]
    }

    private struct Outbox {
        /// Held so that its descriptor stays open (and its number ours) while frames wait.
        let socket: FrameSocket
        var frames: [(bytes: [UInt8], descriptor: Int32?)] = []
        /// Bytes of the first frame already written.
        var offset = 0
        var bytes = 0

        /// Whether a frame carrying a descriptor still waits: a child that does not read gets no
        /// second one (each holds a descriptor of ours).
        var holdsDescriptor: Bool { self.frames.contains { $0.descriptor != nil } }

        mutating func dropAll() {
            for frame in self.frames { if let descriptor = frame.descriptor { close(descriptor) } }
            self.frames.removeAll()
            self.offset = 0
            self.bytes = 0
        }
    }

    /// A child that leaves this much unread is not reading: what it is sent past it is refused
    /// (its heartbeat watchdog will end it).
    static let outboxLimit = 1 << 20
    private let wakeRead: Int32
    private let wakeWrite: Int32
    /// A child's frames are a few dozen bytes; anything longer is a broken or hostile child.
    private let maximumFrame: Int

    init(maximumFrame: Int) {
        self.maximumFrame = maximumFrame
        var fds: [Int32] = [-1, -1]
        precondition(oneo_pipe(&fds, 1) == 0, "cannot create the supervisor's wake pipe")
        self.wakeRead = fds[0]
        self.wakeWrite = fds[1]
        let thread = Thread { [self] in self.loop() }
        thread.name = "oneo-child-io"
        thread.start()
    }

    func watchFrames(of name: String, on socket: FrameSocket, _ handler: @escaping FrameHandler) {
        self.outgoing.withLock { _ = $0.registered.insert(socket.descriptor) }
        self.add(Source(name: name, kind: .channel(socket, handler)))
    }

    func watchOutput(of name: String, descriptor: Int32) {
        self.add(Source(name: name, kind: .output(descriptor)))
    }

    /// Queues a frame for a child, with `descriptor` (duplicated: the caller keeps and closes its
    /// own) passed alongside. Written now as far as the socket takes it, the rest as soon as it
    /// can. False when the socket is not watched (its child is gone), the frame cannot be
    /// encoded, the descriptor cannot be duplicated, the child has left a megabyte unread, or a
    /// descriptor sent to it earlier still waits.
    @discardableResult
    func send(_ message: SupervisorMessage, to socket: FrameSocket, passing descriptor: Int32? = nil) -> Bool {
        guard let bytes = try? Frame.encode(message) else { return false }
        var copy: Int32?
        if let descriptor {
            let duplicate = fcntl(descriptor, F_DUPFD_CLOEXEC, 0)
            guard duplicate >= 0 else { return false }
            copy = duplicate
        }
        let queued = self.outgoing.withLock { outgoing -> Bool in
            guard outgoing.registered.contains(socket.descriptor) else { return false }
            var box = outgoing.boxes[socket.descriptor] ?? Outbox(socket: socket)
            guard box.bytes + bytes.count <= Self.outboxLimit, copy == nil || !box.holdsDescriptor else { return false }
            box.frames.append((bytes, copy))
            box.bytes += bytes.count
            Self.flush(socket.descriptor, &box)
            outgoing.boxes[socket.descriptor] = box.frames.isEmpty ? nil : box
            return true
        }
        guard queued else {
            if let copy { close(copy) }
            return false
        }
        // The poll loop adds the socket's POLLOUT interest if anything is left.
        var byte: UInt8 = 1
        _ = write(self.wakeWrite, &byte, 1)
        return true
    }

    /// Whether a descriptor sent to this child still waits in its queue (the child is not reading).
    func holdsDescriptor(for socket: FrameSocket) -> Bool {
        self.outgoing.withLock { $0.boxes[socket.descriptor]?.holdsDescriptor ?? false }
    }

    /// Writes what the socket takes now, without blocking.
    private static func flush(_ socket: Int32, _ box: inout Outbox) {
        while let frame = box.frames.first {
            let written: Int = frame.bytes[box.offset...].withUnsafeBytes { pointer in
                if box.offset == 0, let descriptor = frame.descriptor {
                    return oneo_send_with_descriptor(socket, pointer.baseAddress, UInt(pointer.count), descriptor)
                }
                return Glibc.send(socket, pointer.baseAddress, pointer.count, Int32(MSG_DONTWAIT | MSG_NOSIGNAL))
            }
            if written < 0 {
                switch errno {
                case EPIPE, ECONNRESET, ENOTCONN, EBADF:
                    // The child is gone: nothing queued for it will be read.
                    box.dropAll()
                case ETOOMANYREFS where box.offset == 0 && frame.descriptor != nil:
                    // That descriptor cannot travel: this frame alone is given up, whole.
                    if let descriptor = frame.descriptor { close(descriptor) }
                    box.bytes -= frame.bytes.count
                    box.frames.removeFirst()
                    continue
                default:
                    // EAGAIN, EINTR, or short of kernel memory: the rest waits for POLLOUT.
                    break
                }
                return
            }
            if box.offset == 0, let descriptor = frame.descriptor, written > 0 {
                close(descriptor)
                box.frames[0].descriptor = nil
            }
            box.offset += written
            if box.offset == frame.bytes.count {
                box.bytes -= frame.bytes.count
                box.frames.removeFirst()
                box.offset = 0
            }
        }
    }

    private func add(_ source: Source) {
        self.pending.withLock { $0.append(source) }
        var byte: UInt8 = 1
        _ = write(self.wakeWrite, &byte, 1)
    }

    private func loop() {
        var sources: [Int32: Source] = [:]
        var chunk = [UInt8](repeating: 0, count: 65536)
        while true {
            for source in self.pending.withLock({ list in defer { list.removeAll() }; return list }) {
                sources[Self.descriptor(of: source.kind)] = source
            }
            let waiting = self.outgoing.withLock { Set($0.boxes.keys) }
            var polled = [pollfd(fd: self.wakeRead, events: Int16(POLLIN), revents: 0)]
            polled += sources.keys.map { pollfd(fd: $0, events: Int16(POLLIN) | (waiting.contains($0) ? Int16(POLLOUT) : 0), revents: 0) }
            let ready = poll(&polled, nfds_t(polled.count), -1)
            if ready < 0 { continue }
            if polled[0].revents != 0 {
                while read(self.wakeRead, &chunk, chunk.count) > 0 {}
            }
            for entry in polled.dropFirst() where entry.revents & Int16(POLLOUT) != 0 {
                self.outgoing.withLock { outgoing in
                    guard var box = outgoing.boxes[entry.fd] else { return }
                    Self.flush(entry.fd, &box)
                    outgoing.boxes[entry.fd] = box.frames.isEmpty ? nil : box
                }
            }
            for entry in polled.dropFirst() where entry.revents & ~Int16(POLLOUT) != 0 {
                guard var source = sources[entry.fd] else { continue }
                let count: Int
                switch source.kind {
                case .channel: count = recv(entry.fd, &chunk, chunk.count, Int32(MSG_DONTWAIT))
                case .output: count = read(entry.fd, &chunk, chunk.count)
                }
                if count < 0, errno == EAGAIN || errno == EINTR { continue }
                if count <= 0 {
                    self.finish(source)
                    sources[entry.fd] = nil
                    continue
                }
                source.buffer += chunk[0..<count]
                let keep: Bool
                switch source.kind {
                case .channel(_, let handler): keep = Self.deliverFrames(&source.buffer, limit: self.maximumFrame, to: handler)
                case .output: keep = true; Self.writeLines(&source.buffer, of: source.name, flushAll: false)
                }
                if keep {
                    sources[entry.fd] = source
                } else {
                    self.finish(source)
                    sources[entry.fd] = nil
                }
            }
        }
    }

    private static func descriptor(of kind: Kind) -> Int32 {
        switch kind {
        case .channel(let socket, _): socket.descriptor
        case .output(let fd): fd
        }
    }

    private func finish(_ source: Source) {
        var source = source
        if case .channel(let socket, _) = source.kind {
            // The child is gone: what waited for it goes too (descriptors closed).
            self.outgoing.withLock { outgoing in
                outgoing.registered.remove(socket.descriptor)
                outgoing.boxes[socket.descriptor]?.dropAll()
                outgoing.boxes[socket.descriptor] = nil
            }
        }
        if case .output(let fd) = source.kind {
            Self.writeLines(&source.buffer, of: source.name, flushAll: true)
            close(fd)
        }
    }

    /// Hands every whole frame to the handler; false when the child broke the framing.
    private static func deliverFrames(_ buffer: inout [UInt8], limit: Int, to handler: FrameHandler) -> Bool {
        // Frames are read at an offset and the buffer shortened once: a chunk of a thousand
        // small frames costs one copy, not one per frame.
        var start = 0
        defer { if start > 0 { buffer.removeFirst(start) } }
        while buffer.count - start >= 4 {
            guard let length = try? Frame.bodyLength(header: Array(buffer[start..<(start + 4)]), limit: limit) else {
                handler(nil)
                return false
            }
            guard buffer.count - start >= 4 + length else { return true }
            let body = Array(buffer[(start + 4)..<(start + 4 + length)])
            start += 4 + length
            // A frame that does not decode is a broken or hostile child: reading it ends here (once;
            // its heartbeats stop with it and the watchdog replaces it).
            guard let message = try? Frame.decode(ChildMessage.self, body: body) else {
                handler(nil)
                return false
            }
            handler(message)
        }
        return true
    }

    /// Writes each complete line as `name | line`, one write(2) per line so lines from different
    /// children never interleave.
    private static func writeLines(_ buffer: inout [UInt8], of name: String, flushAll: Bool) {
        let prefix = Array("\(name) | ".utf8)
        while let newline = buffer.firstIndex(of: UInt8(ascii: "\n")) ?? ((flushAll || buffer.count > 16384) && !buffer.isEmpty ? buffer.count - 1 : nil) {
            var line = prefix + buffer[0...newline]
            if line.last != UInt8(ascii: "\n") { line.append(UInt8(ascii: "\n")) }
            buffer.removeFirst(newline + 1)
            line.withUnsafeBytes { _ = write(STDERR_FILENO, $0.baseAddress, $0.count) }
        }
    }
}
