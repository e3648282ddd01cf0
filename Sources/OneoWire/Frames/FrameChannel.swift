import Foundation
public import NIOCore
import NIOPosix

/// A process socket carrying frames without blocking a thread: NIO reads and writes it, a write
/// waits while the peer is not reading (backpressure, never a dropped frame), and a frame over
/// the inbound cap or one that does not decode closes the connection with the reason.
public struct FrameChannel<Inbound: Decodable & Sendable, Outbound: Encodable & Sendable>: Sendable {
    public typealias Writer = FrameWriter<Outbound>

    private let channel: NIOAsyncChannel<ByteBuffer, ByteBuffer>
    private let outboundLimit: Int

    /// Takes over `descriptor` (a connected Unix stream socket): it is closed when the channel is.
    public static func open(descriptor: Int32, inboundLimit: Int, outboundLimit: Int) async throws -> FrameChannel {
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .withConnectedSocket(descriptor) { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(LengthPrefixedFrameDecoder(limit: inboundLimit)))
                    return try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                }
            }
        return FrameChannel(channel: channel, outboundLimit: outboundLimit)
    }

    /// Runs `body` with the decoded inbound frames and a writer, and closes the socket when it
    /// returns. The frames end when the peer closes; they throw a `WireError` on a broken frame.
    public func run<Result: Sendable>(
        _ body: (_ inbound: FrameSequence<Inbound>, _ outbound: Writer) async throws -> Result
    ) async throws -> Result {
        try await self.channel.executeThenClose { inbound, outbound in
            try await body(FrameSequence(base: inbound), FrameWriter(base: outbound, limit: self.outboundLimit))
        }
    }
}

/// Decoded frames from a `FrameChannel`.
public struct FrameSequence<Element: Decodable & Sendable>: AsyncSequence, Sendable {
    let base: NIOAsyncChannelInboundStream<ByteBuffer>

    public struct AsyncIterator: AsyncIteratorProtocol {
        var base: NIOAsyncChannelInboundStream<ByteBuffer>.AsyncIterator

        public mutating func next() async throws -> Element? {
            guard let body = try await self.base.next() else { return nil }
            return try Frame.decode(Element.self, body: Array(body.readableBytesView))
        }
    }

    public func makeAsyncIterator() -> AsyncIterator {
        AsyncIterator(base: self.base.makeAsyncIterator())
    }
}

/// Writes frames to a `FrameChannel`; a write waits while the peer's buffer is full.
public struct FrameWriter<Message: Encodable & Sendable>: Sendable {
    let base: NIOAsyncChannelOutboundWriter<ByteBuffer>
    let limit: Int

    public func send(_ message: Message) async throws {
        let bytes = try Frame.encode(message, limit: self.limit)
        try await self.base.write(ByteBuffer(bytes: bytes))
    }
}

/// Splits the byte stream at the 4-byte big-endian lengths, refusing a length over the cap
/// before reading (or buffering) its body.
struct LengthPrefixedFrameDecoder: ByteToMessageDecoder {
    typealias InboundOut = ByteBuffer
    let limit: Int

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        guard let length = buffer.getInteger(at: buffer.readerIndex, as: UInt32.self) else { return .needMoreData }
        guard Int(length) <= self.limit else {
            throw WireError(.oversized, detail: "announced \(length) bytes, limit \(self.limit)")
        }
        guard buffer.readableBytes >= 4 + Int(length) else { return .needMoreData }
        buffer.moveReaderIndex(forwardBy: 4)
        // Checked just above: the body is there.
        let body = buffer.readSlice(length: Int(length))!
        context.fireChannelRead(Self.wrapInboundOut(body))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        while try self.decode(context: context, buffer: &buffer) == .continue {}
        if buffer.readableBytes > 0 { throw WireError(.closed, detail: "inside a frame, \(buffer.readableBytes) bytes unread") }
        return .needMoreData
    }
}
