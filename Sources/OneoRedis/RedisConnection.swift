public import OneoWire
import CHiredis
#if canImport(Glibc)
import Glibc
#endif

/// A blocking Redis connection over hiredis; the only type that touches the hiredis handle. Calls
/// block, so async callers run them on `NIOThreadPool`; one connection serves one thread at a time.
public final class RedisConnection {
    public enum Reply: Hashable, Sendable {
        case status(String)
        case string([UInt8])
        case integer(Int64)
        case array([Reply])
        case null
    }

    private let context: UnsafeMutablePointer<redisContext>

    public init(_ settings: RedisSettings, timeoutMilliseconds: Int = 2_000) throws(RedisError) {
        let timeout = timeval(tv_sec: timeoutMilliseconds / 1000, tv_usec: (timeoutMilliseconds % 1000) * 1000)
        let context: UnsafeMutablePointer<redisContext>?
        switch settings.endpoint {
        case .unixSocket(let path):
            context = redisConnectUnixWithTimeout(path, timeout)
        case .tcp(let host, let port):
            context = redisConnectWithTimeout(host, Int32(port), timeout)
        }
        guard let context else { throw RedisError(detail: "cannot allocate a hiredis context") }
        guard context.pointee.err == 0 else {
            let message = Self.errorText(context)
            redisFree(context)
            throw RedisError(detail: "connect to \(settings): \(message)")
        }
        _ = redisSetTimeout(context, timeout)
        self.context = context
        if let username = settings.username, let password = settings.password {
            do {
                _ = try self.command(["AUTH", username, password])
            } catch {
                throw RedisError(detail: "login as \(username) refused (apply the ACL lines of `oneo-ai redis acl`)")
            }
        }
    }

    deinit {
        redisFree(self.context)
    }

    /// Sends one command as an argument vector (no format string, so no injection) and reads its reply.
    public func command(_ arguments: [String]) throws(RedisError) -> Reply {
        // Each argument goes as a C string: one holding a NUL would be cut short (and its length
        // would overrun the copy), so none may.
        guard !arguments.contains(where: { $0.utf8.contains(0) }) else { throw RedisError(detail: "an argument holds a NUL byte") }
        let cStrings = arguments.map { strdup($0) }
        defer { cStrings.forEach { free($0) } }
        let lengths = arguments.map { $0.utf8.count }
        var argv: [UnsafePointer<CChar>?] = cStrings.map { UnsafePointer($0) }
        let raw: UnsafeMutableRawPointer? = argv.withUnsafeMutableBufferPointer { argv in
            lengths.withUnsafeBufferPointer { argvlen in
                redisCommandArgv(self.context, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
            }
        }
        guard let raw else { throw RedisError(detail: Self.errorText(self.context)) }
        let reply = raw.assumingMemoryBound(to: redisReply.self)
        defer { freeReplyObject(raw) }
        return try Self.convert(reply)
    }

    /// The value at `key`, nil when there is none.
    public func get(_ key: String) throws(RedisError) -> [UInt8]? {
        switch try self.command(["GET", key]) {
        case .string(let bytes): return bytes
        case .null: return nil
        default: throw RedisError(detail: "GET answered something other than a value")
        }
    }

    /// Sets `key` to `value`, expiring after `seconds`.
    public func set(_ key: String, _ value: [UInt8], expiringAfter seconds: Int) throws(RedisError) {
        let reply = try self.command(["SET", key, String(decoding: value, as: UTF8.self), "EX", String(max(1, seconds))])
        guard case .status("OK") = reply else { throw RedisError(detail: "SET did not answer OK") }
    }

    public func ping() throws(RedisError) {
        guard case .status("PONG") = try self.command(["PING"]) else {
            throw RedisError(detail: "PING did not answer PONG")
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) throws(RedisError) -> Reply {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STATUS:
            return .status(String(cString: value.str))
        case REDIS_REPLY_STRING:
            return .string(Array(UnsafeRawBufferPointer(start: value.str, count: value.len)))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_NIL:
            return .null
        case REDIS_REPLY_ARRAY:
            var elements: [Reply] = []
            for index in 0..<value.elements {
                guard let element = value.element[index] else { continue }
                elements.append(try convert(element))
            }
            return .array(elements)
        case REDIS_REPLY_ERROR:
            throw RedisError(detail: "server error: \(String(cString: value.str))", isReply: true)
        default:
            throw RedisError(detail: "unsupported reply type \(value.type)")
        }
    }

    private static func errorText(_ context: UnsafeMutablePointer<redisContext>) -> String {
        withUnsafeBytes(of: context.pointee.errstr) { buffer in
            String(decoding: buffer.prefix(while: { $0 != 0 }), as: UTF8.self)
        }
    }
}

/// A Redis failure. Redis only holds what can be lost, so callers treat it as a cache miss.
public struct RedisError: Error, Hashable, Sendable, CustomStringConvertible {
    public let detail: String
    /// Redis answered with an error (the connection is sound); false for a connection or
    /// protocol failure.
    public let isReply: Bool
    public init(detail: String, isReply: Bool = false) {
        self.detail = detail
        self.isReply = isReply
    }
    public var description: String { "redis: \(self.detail)" }
}
