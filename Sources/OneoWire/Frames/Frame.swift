import Foundation

/// The one wire format between our processes: a 4-byte big-endian length, then one JSON object.
/// The size cap is checked before anything is allocated, so a hostile length cannot exhaust memory.
public enum Frame {
    public static let maximumSize = 1 << 20

    public static func encode(_ message: some Encodable, limit: Int = Frame.maximumSize) throws(WireError) -> [UInt8] {
        let body: Data
        do {
            // `/` as is: a frame re-encoded by a relay (the tool router) must not grow.
            let encoder = JSONEncoder()
            encoder.outputFormatting = .withoutEscapingSlashes
            body = try encoder.encode(message)
        } catch {
            throw WireError(.unencodable, detail: "\(type(of: message))")
        }
        guard body.count <= limit else { throw WireError(.oversized, detail: "\(body.count) bytes") }
        let length = UInt32(body.count)
        return [UInt8(length >> 24), UInt8((length >> 16) & 0xFF), UInt8((length >> 8) & 0xFF), UInt8(length & 0xFF)] + body
    }

    /// The body length announced by a 4-byte header, or an error if it exceeds the cap.
    public static func bodyLength(header: [UInt8], limit: Int = Frame.maximumSize) throws(WireError) -> Int {
        precondition(header.count == 4)
        let length = header.reduce(0) { ($0 << 8) | Int($1) }
        guard length <= limit else { throw WireError(.oversized, detail: "announced \(length) bytes, limit \(limit)") }
        return length
    }

    public static func decode<Message: Decodable>(_ type: Message.Type, body: [UInt8]) throws(WireError) -> Message {
        do {
            return try JSONDecoder().decode(type, from: Data(body))
        } catch {
            throw WireError(.malformed, detail: "not a valid \(type) frame")
        }
    }
}

/// A framing or transport failure on a process socket. Never carries the frame's content.
public struct WireError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Code: Hashable, Sendable {
        case oversized, malformed, unencodable, closed, io(Int32)
    }

    public let code: Code
    public let detail: String

    public init(_ code: Code, detail: String) {
        self.code = code
        self.detail = detail
    }

    public var description: String {
        switch self.code {
        case .oversized: return "frame over the size limit (\(self.detail))"
        case .malformed: return "malformed frame: \(self.detail)"
        case .unencodable: return "cannot encode frame \(self.detail)"
        case .closed: return "peer closed the socket (\(self.detail))"
        case .io(let errno): return "socket error \(errno) (\(self.detail))"
        }
    }
}
