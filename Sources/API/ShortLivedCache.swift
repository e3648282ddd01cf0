import Synchronization

/// A small map whose entries expire after a few seconds: saves the database a lookup per request
/// for facts that rarely change (which tenant a token belongs to, which id a pipeline slug names).
/// A change (a revoked token) takes effect within `lifetime`.
final class ShortLivedCache<Key: Hashable & Sendable, Value: Sendable>: Sendable {
    private let entries = Mutex<[Key: (value: Value, expires: ContinuousClock.Instant)]>([:])
    private let lifetime: Duration
    private let capacity: Int

    init(lifetime: Duration, capacity: Int = 10_000) {
        self.lifetime = lifetime
        self.capacity = capacity
    }

    func value(for key: Key) -> Value? {
        let now = ContinuousClock.now
        return self.entries.withLock { entries in
            guard let entry = entries[key] else { return nil }
            guard entry.expires > now else {
                entries[key] = nil
                return nil
            }
            return entry.value
        }
    }

    func store(_ value: Value, for key: Key) {
        let expires = ContinuousClock.now + self.lifetime
        self.entries.withLock { entries in
            // Bounded: a flood of distinct keys empties the cache rather than growing it.
            if entries.count >= self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (value, expires)
        }
    }
}
