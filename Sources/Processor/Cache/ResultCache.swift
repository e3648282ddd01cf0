import Foundation
public import Logging
import NIOPosix
public import OneoWire
import OneoRedis
import Synchronization

/// The tenant's result cache in Redis, reached as the tenant's own ACL user (its key prefix
/// only). Redis holds only what can be lost: down, slow or refusing, every lookup is a miss and
/// every store is skipped, with one warning per outage; when it answers again caching resumes by
/// itself. hiredis blocks, so calls run on a small thread pool of the cache's own with short
/// timeouts, each on a connection checked out of a pool (no lock is held across I/O, and the
/// cooperative pool never waits on Redis).
public final class ResultCache: Sendable {
    /// A cached value larger than this is not stored.
    static let maximumEntryBytes = 256 << 10
    /// After a failure, Redis is left alone this long (each job then misses at once).
    static let retryAfter: Duration = .seconds(1)
    static let timeoutMilliseconds = 100
    /// Operations waiting for a thread past this many are misses: a slow Redis never queues jobs.
    static let maximumQueued = 64
    static let threads = 2

    private struct Health {
        var downUntil: ContinuousClock.Instant?
        var warned = false
        var queued = 0
    }

    private let settings: RedisSettings?
    private let logger: Logger
    private let health = Mutex(Health())
    /// A connection at rest in the pool: no thread uses it until it is checked out again, so
    /// handing it between pool threads is safe.
    private struct Idle: @unchecked Sendable {
        let connection: RedisConnection
    }

    /// Idle connections, each used by one thread at a time.
    private let idle = Mutex<[Idle]>([])
    private let pool: NIOThreadPool

    /// - Parameter settings: nil, or no key prefix: no cache (every lookup misses).
    public init(settings: RedisSettings?, logger: Logger) {
        self.settings = settings
        self.logger = logger
        self.pool = NIOThreadPool(numberOfThreads: Self.threads)
        if settings?.keyPrefix != nil { self.pool.start() }
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

    private func checkIn(_ connection: RedisConnection) {
        let idle = Idle(connection: connection)
        self.idle.withLock { if $0.count < Self.threads { $0.append(idle) } }
    }

    private func isDown() -> Bool {
        self.health.withLock { health in health.downUntil.map { ContinuousClock.now < $0 } ?? false }
    }

    /// Runs one command on a pooled connection (made when none is idle); nil when Redis is down,
    /// refused it, or too much is already waiting.
    private func run<Result: Sendable>(_ body: @escaping @Sendable (RedisConnection) throws(RedisError) -> Result) async -> Result? {
        guard let settings = self.settings, settings.keyPrefix != nil, !self.isDown() else { return nil }
        let admitted = self.health.withLock { health -> Bool in
            guard health.queued < Self.maximumQueued else { return false }
            health.queued += 1
            return true
        }
        guard admitted else { return nil }
        defer { self.health.withLock { $0.queued -= 1 } }
        let outcome: Swift.Result<Result, RedisError>?
        do {
            outcome = try await self.pool.runIfActive { () -> Swift.Result<Result, RedisError>? in
                // An outage that began while this waited: miss at once, no connect of our own.
                guard !self.isDown() else { return nil }
                do throws(RedisError) {
                    let connection: RedisConnection
                    if let pooled = self.idle.withLock({ $0.popLast() }) {
                        connection = pooled.connection
                    } else {
                        connection = try RedisConnection(settings, timeoutMilliseconds: Self.timeoutMilliseconds)
                    }
                    do throws(RedisError) {
                        let value = try body(connection)
                        self.checkIn(connection)
                        return .success(value)
                    } catch {
                        // An error reply leaves the connection sound; anything else may have left
                        // half a reply on it, and it is dropped.
                        if error.isReply { self.checkIn(connection) }
                        throw error
                    }
                } catch {
                    return .failure(error)
                }
            }
        } catch {
            return nil
        }
        switch outcome {
        case nil:
            return nil
        case .success(let value)?:
            let recovered = self.health.withLock { health -> Bool in
                defer { health.downUntil = nil; health.warned = false }
                return health.warned
            }
            if recovered { self.logger.notice("the result cache answers again; caching resumed") }
            return value
        case .failure(let error)?:
            // Redis refused this one command (a bad expiry, out of memory): a miss, not an outage.
            if error.isReply {
                self.logger.debug("the result cache refused a command", metadata: ["error": "\(error)"])
                return nil
            }
            let first = self.health.withLock { health -> Bool in
                health.downUntil = .now + Self.retryAfter
                defer { health.warned = true }
                return !health.warned
            }
            if first {
                self.logger.warning("the result cache does not answer; jobs run uncached until it does", metadata: ["error": "\(error)"])
            }
            return nil
        }
    }
}
