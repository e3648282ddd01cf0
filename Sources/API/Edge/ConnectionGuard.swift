import Hummingbird
import HTTPTypes
public import NIOCore
import NIOHTTPTypes
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// How many connections the API holds open and for how long: what a client that opens
/// thousands of connections, or sends its headers or body a byte at a time, can take.
public struct ConnectionSettings: Sendable {
    /// Open connections in all; past it a new connection is answered 503 and closed.
    public var maximum: Int
    /// Open connections from one client address.
    public var perAddress: Int
    /// From a connection's start, or the end of its last response, until the next request's
    /// head is complete: covers idle keep-alive connections and slow headers alike.
    public var headTimeout: TimeAmount
    /// From a request's head until its body is complete.
    public var bodyTimeout: TimeAmount
    /// From a request's end until its response has been written: a client that never reads a
    /// response does not keep its connection.
    public var responseTimeout: TimeAmount
    /// How long a connection over a cap may take to send the request its 503 answers.
    public var refusedTimeout: TimeAmount

    public init(
        maximum: Int = 4_096, perAddress: Int = 256, headTimeout: TimeAmount = .seconds(20), bodyTimeout: TimeAmount = .seconds(30),
        responseTimeout: TimeAmount = .seconds(120), refusedTimeout: TimeAmount = .seconds(2)
    ) {
        self.maximum = maximum
        self.perAddress = perAddress
        self.headTimeout = headTimeout
        self.bodyTimeout = bodyTimeout
        self.responseTimeout = responseTimeout
        self.refusedTimeout = refusedTimeout
    }
}

/// The count of open connections, in all and per client address, shared by every connection's
/// `ConnectionGuard`.
final class ConnectionCounts: Sendable {
    private struct Counts {
        var total = 0
        var byAddress: [String: Int] = [:]
    }

    let settings: ConnectionSettings
    private let counts = Mutex(Counts())

    init(settings: ConnectionSettings) {
        self.settings = settings
    }

    /// Counts a connection in if there is room for it.
    func admit(_ address: String) -> Bool {
        self.counts.withLock { counts in
            guard counts.total < self.settings.maximum, counts.byAddress[address, default: 0] < self.settings.perAddress else { return false }
            counts.total += 1
            counts.byAddress[address, default: 0] += 1
            return true
        }
    }

    func release(_ address: String) {
        self.counts.withLock { counts in
            counts.total -= 1
            let left = counts.byAddress[address, default: 1] - 1
            counts.byAddress[address] = left > 0 ? left : nil
        }
    }

    var open: Int { self.counts.withLock { $0.total } }
}

/// One per connection, after HTTP decoding: admits the connection against the caps (or answers
/// its first request 503 and closes), and closes it when a request's head or body does not
/// arrive in time (408 when part of a request came, silently when it was idle).
final class ConnectionGuard: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let counts: ConnectionCounts
    private var admitted = false
    /// Requests whose head came and whose response has not ended.
    private var inFlight = 0
    private var readingBody = false
    /// Bytes of the next request have arrived (its head is not complete yet).
    private var partialHead = false
    private var timer: Scheduled<Void>?

    init(counts: ConnectionCounts) {
        self.counts = counts
    }

    func handlerAdded(context: ChannelHandlerContext) {
        let address = Self.address(of: context.channel)
        self.admitted = self.counts.admit(address)
        if self.admitted {
            let counts = self.counts
            context.channel.closeFuture.whenComplete { _ in counts.release(address) }
        }
        if context.channel.isActive { self.arm(context, self.firstTimeout) }
    }

    func channelActive(context: ChannelHandlerContext) {
        self.arm(context, self.firstTimeout)
        context.fireChannelActive()
    }

    /// A refused connection gets a short while to send the request its 503 answers.
    private var firstTimeout: TimeAmount { self.admitted ? self.counts.settings.headTimeout : self.counts.settings.refusedTimeout }

    func channelReadComplete(context: ChannelHandlerContext) {
        // Bytes came in while no request is in flight: a head has started.
        if self.inFlight == 0 { self.partialHead = true }
        context.fireChannelReadComplete()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = self.unwrapInboundIn(data)
        guard self.admitted else {
            if case .head = part { self.reject(context) }
            return
        }
        switch part {
        case .head:
            self.inFlight += 1
            self.readingBody = true
            self.partialHead = false
            self.arm(context, self.counts.settings.bodyTimeout)
        case .body:
            break
        case .end:
            self.readingBody = false
            self.arm(context, self.counts.settings.responseTimeout)
        }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = self.unwrapOutboundIn(data), self.inFlight > 0 {
            self.inFlight -= 1
            if self.readingBody {
                // A pipelined request's body is still due: its deadline stands.
            } else if self.inFlight == 0 {
                self.partialHead = false
                self.arm(context, self.counts.settings.headTimeout)
            } else {
                self.arm(context, self.counts.settings.responseTimeout)
            }
        }
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        self.timer?.cancel()
        self.timer = nil
    }

    private func arm(_ context: ChannelHandlerContext, _ delay: TimeAmount) {
        self.timer?.cancel()
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: delay) { [weak self] in
            self?.expired(context)
        }
    }

    private func expired(_ context: ChannelHandlerContext) {
        self.timer = nil
        // A request half-sent (its head or its body) hears why, when no earlier response is
        // still owed on the connection (a 408 behind unread bytes would never leave); otherwise,
        // and when idle, the connection just closes.
        if (self.readingBody && self.inFlight == 1) || (self.inFlight == 0 && self.partialHead) {
            self.answer(context, .requestTimeout, code: "timeout", message: "the request did not arrive in time")
        } else {
            // Idle, or a response the client did not read in time.
            context.close(promise: nil)
        }
    }

    private func reject(_ context: ChannelHandlerContext) {
        self.answer(context, .serviceUnavailable, code: "overloaded", message: "too many open connections; retry shortly")
    }

    /// Writes a whole JSON error response, bypassing the router, and closes the connection.
    private func answer(_ context: ChannelHandlerContext, _ status: HTTPResponse.Status, code: String, message: String) {
        self.timer?.cancel()
        let body = context.channel.allocator.buffer(string: #"{"code":"\#(code)","message":"\#(message)"}"#)
        var fields: HTTPFields = [.contentType: "application/json", .contentLength: "\(body.readableBytes)", .connection: "close"]
        if status == .serviceUnavailable { fields[.retryAfter] = "1" }
        context.write(self.wrapOutboundOut(.head(HTTPResponse(status: status, headerFields: fields))), promise: nil)
        context.write(self.wrapOutboundOut(.body(body)), promise: nil)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil))).assumeIsolated().whenComplete { _ in
            context.close(promise: nil)
        }
        // A client that does not read even this answer is closed all the same.
        self.timer = context.eventLoop.assumeIsolated().scheduleTask(in: self.counts.settings.refusedTimeout) { context.close(promise: nil) }
    }

    /// The client, as caps count it: an IPv4 address (also when mapped into IPv6), or the /64
    /// an IPv6 address is in, since one host commonly holds a whole /64.
    private static func address(of channel: any Channel) -> String {
        guard let remote = channel.remoteAddress, let text = remote.ipAddress else { return "local" }
        switch remote {
        case .v6:
            var bytes = [UInt8](repeating: 0, count: 16)
            guard inet_pton(AF_INET6, text, &bytes) == 1 else { return text }
            if bytes[0..<10].allSatisfy({ $0 == 0 }), bytes[10] == 0xFF, bytes[11] == 0xFF {
                return bytes[12..<16].map(String.init).joined(separator: ".")
            }
            return bytes[0..<8].map { String($0, radix: 16) }.joined(separator: ":") + "::/64"
        default:
            return text
        }
    }
}
