import Foundation
public import Logging
import NIOPosix
public import OneoWire
import OneoRedis
import Synchronization

/// The tenant's result cache in Redis, reached as the tenant's own ACL user (its key prefix
/// only). Redis holds only what can be lost: down, slow or refusing, every lookup is a miss and
/// every store is skipped, with one warning per outage; when it answers again caching resumes by
/// itself. Calls block in hiredis, so they run on the thread pool with short timeouts, never on
/// the cooperative pool.
public final class ResultCache: Sendable {
    /// A cached value larger than this is not stored.
    static let maximumEntryBytes = 256 << 10
    /// After a failure, Redis is left alone this long (each job then misses at once).
    static let retryAfter: Duration = .seconds(1)
    static let timeoutMilliseconds = 100

    private struct State: ~Copyable {
        var connection: RedisConnection?
        var downUntil: ContinuousClock.Instant?
        var warned = false
    }

    private let settings: RedisSettings?
    private let tenant: TenantID
    private let logger: Logger
    private let state = Mutex(State())

    /// - Parameter settings: nil: no cache (every lookup misses).
    public init(settings: RedisSettings?, tenant: TenantID, logger: Logger) {
        self.settings = settings
        self.tenant = tenant
        self.logger = logger
    }

    /// Enabled with a login whose key prefix is known (the supervisor's ACL user for the tenant).
    public var isEnabled: Bool { self.settings?.keyPrefix != nil }

    /// The entry's key: the tenant's prefix (the only keys its ACL user may touch) and a digest.
    func key(_ digest: String) -> String { (self.settings?.keyPrefix ?? "") + digest }

    /// The value cached under `key`, nil on a miss or when Redis does not answer.
    func get(_ key: String) async -> JSONValue? {
        guard let bytes = await self.run({ connection throws(RedisError) in try connection.get(key) }) ?? nil else { return nil }
        // Only our own processor writes here, but what comes back is still parsed as data.
        guard bytes.count <= Self.maximumEntryBytes, let entry = try? JSONDecoder().decode([String: JSONValue].self, from: Data(bytes)) else { return nil }
        return entry["v"]
    }

    /// Stores `value` under `key` for `seconds`; skipped when too large or Redis does not answer.
    func set(_ key: String, _ value: JSONValue, seconds: Int) async {
        guard let data = try? JSONEncoder().encode(["v": value]), data.count <= Self.maximumEntryBytes else { return }
        let bytes = [UInt8](data)
        _ = await self.run { connection throws(RedisError) in try connection.set(key, bytes, expiringAfter: seconds) }
    }

    /// Runs one command on the connection (made when missing), nil when Redis is down or failed.
    private func run<Result: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> Result) async -> Result? {
        guard let settings = self.settings else { return nil }
        if let until = self.state.withLock({ $0.downUntil }), ContinuousClock.now < until { return nil }
        let outcome: Swift.Result<Result, RedisError>
        do {
            outcome = try await NIOThreadPool.singleton.runIfActive {
                self.state.withLock { state -> Swift.Result<Result, RedisError> in
                    do throws(RedisError) {
                        if state.connection == nil { state.connection = try RedisConnection(settings, timeoutMilliseconds: Self.timeoutMilliseconds) }
                        return .success(try body(state.connection!))
                    } catch {
                        // A connection that failed once is not trusted again (a half-read reply).
                        state.connection = nil
                        return .failure(error)
                    }
                }
            }
        } catch {
            return nil
        }
        switch outcome {
        case .success(let value):
            let recovered = self.state.withLock { state -> Bool in
                defer { state.downUntil = nil; state.warned = false }
                return state.warned
            }
            if recovered { self.logger.notice("the result cache answers again; caching resumed") }
            return value
        case .failure(let error):
            let first = self.state.withLock { state -> Bool in
                state.downUntil = .now + Self.retryAfter
                defer { state.warned = true }
                return !state.warned
            }
            if first {
                self.logger.warning("the result cache does not answer; jobs run uncached until it does", metadata: ["error": "\(error)"])
            }
            return nil
        }
    }
}
