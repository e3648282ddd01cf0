import OneoWire
import Testing

/// The one typed configuration: every key in range, set with the key and its source named.
@Suite("engine tunables")
struct EngineTunablesTests {
    @Test("the defaults are valid, and each key reads and writes its own field")
    func defaultsAndKeys() throws {
        var tunables = EngineTunables()
        try tunables.validate()
        for key in EngineTunables.Key.allCases {
            let value = key.range.upperBound
            try tunables.set(key, value, from: "test")
            #expect(tunables[keyPath: key.path] == value, "\(key.rawValue)")
        }
        #expect(Set(EngineTunables.Key.allCases.map(\.rawValue)).count == EngineTunables.Key.allCases.count)
    }

    @Test("a value out of range is refused with the key, the source and the range")
    func outOfRange() {
        var tunables = EngineTunables()
        let error = #expect(throws: ConfigurationError.self) {
            try tunables.set(.queueLeaseSeconds, 1, from: "ONEO_QUEUE_LEASE_SECONDS")
        }
        #expect(error?.key == "queue.lease_seconds (ONEO_QUEUE_LEASE_SECONDS)")
        #expect(error?.problem.contains("10...86400") == true)
        #expect(tunables.queue.leaseSeconds == 120, "a refused value changes nothing")
    }

    @Test("a heartbeat timeout shorter than the interval is refused")
    func heartbeatConsistency() throws {
        var tunables = EngineTunables()
        try tunables.set(.supervisionHeartbeatIntervalMilliseconds, 5_000, from: "test")
        try tunables.set(.supervisionHeartbeatTimeoutMilliseconds, 2_000, from: "test")
        #expect(throws: ConfigurationError.self) { try tunables.validate() }
    }

    @Test("tunables cross the wire whole, in the bootstrap frame")
    func roundTrip() throws {
        var tunables = EngineTunables()
        try tunables.set(.queueCommitBatch, 17, from: "test")
        let bootstrap = ChildBootstrap(database: nil, redis: nil, supervisor: 1, worker: "w", tunables: tunables)
        let decoded = try Frame.decode(ChildBootstrap.self, body: Array(Frame.encode(bootstrap).dropFirst(4)))
        #expect(decoded.tunables == tunables)
    }
}
