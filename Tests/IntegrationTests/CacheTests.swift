import Foundation
import Synchronization
import OneoRedis
import OneoTesting
import OneoWire
import PostgresNIO
import StackControl
import Testing

/// The per-tenant result cache: a hit makes no call and costs nothing, identical requests in the
/// air at once make one call, tenants never share an entry (Redis ACL users), and Redis down,
/// restarted or flushed under load fails no job.
@Suite("result cache", .serialized, .timeLimit(.minutes(5)))
struct CacheTests {
    static func makePipeline(_ stack: TestStack, api: JSONClient? = nil, cacheDuration: Int = 3600) async throws {
        let api = api ?? stack.api
        #expect(try await api.post("/pipelines/", ["name": "Leads", "slug": "leads"]).status == 201)
        for slug in ["name", "company"] {
            #expect(try await api.post("/pipelines/leads/fields/", ["name": .string(slug), "slug": .string(slug), "field_type": "text"]).status == 201)
        }
        let field = try await api.post("/pipelines/leads/fields/", [
            "name": "Pitch", "slug": "pitch", "field_type": "ai_generated",
            "ai_config": ["prompt": "Write a pitch for a company called {company}.", "model": "gpt-4o-mini", "cache_duration": .integer(Int64(cacheDuration))],
        ])
        try #require(field.status == 201, "\(field.body)")
    }

    static func createRecord(_ api: JSONClient, company: String) async throws -> String {
        let created = try await api.post("/pipelines/leads/records/", ["data": ["name": "Someone", "company": .string(company)]])
        try #require(created.status == 201, "\(created.body)")
        return try #require(created["triggered_jobs"]?.arrayValue?.first?["job_id"]?.stringValue)
    }

    static func finished(_ api: JSONClient, _ job: String) async throws -> JSONValue {
        var done: JSONValue = .null
        try await waitUntil("job \(job) to finish") {
            done = try await api.get("/ai-jobs/\(job)/").body
            return ["completed", "failed"].contains(done["status"]?.stringValue ?? "")
        }
        return done
    }

    static func calls(_ stack: TestStack) async throws -> Int {
        try await stack.providerRequests().count
    }

    /// A command as Redis's own administrator (the test server's default user).
    static func admin(_ url: String, _ arguments: [String]) throws -> RedisConnection.Reply {
        try RedisConnection(try RedisSettings(url: url), timeoutMilliseconds: 2_000).command(arguments)
    }

    static func namespace(_ stack: TestStack) async throws -> String {
        try await stack.withDatabase { database, logger in
            var namespace = ""
            for try await value in try await database.query("SELECT cache_namespace FROM instance_settings", logger: logger).decode(String.self) { namespace = value }
            return namespace
        }
    }

    @Test("a hit makes no call and costs nothing, with a usage row that says so; another prompt misses; cache_duration 0 caches nothing")
    func hitAndMiss() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack)
            let first = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))
            #expect(first["status"] == "completed")
            #expect(first["cache_hit"] == false)
            #expect(try await Self.calls(stack) == 1)
            let second = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))
            #expect(second["status"] == "completed")
            #expect(second["cache_hit"] == true)
            #expect(second["cost_micros"]?.integerValue == 0)
            #expect(second["output_data"] == first["output_data"])
            #expect(try await Self.calls(stack) == 1, "a hit called the provider")
            #expect(try await stack.count("SELECT count(*) FROM ai_usage WHERE cache_hit AND cost_micros = 0 AND tokens_used = 0") == 1)
            let other = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Globex"))
            #expect(other["cache_hit"] == false)
            #expect(try await Self.calls(stack) == 2)
            // The entry sits under the tenant's prefix, with the field's TTL.
            let prefix = "oneo:{\(try await Self.namespace(stack))-1}:cache:"
            guard case .array(let keys) = try Self.admin(try TestServices.redisURL(), ["KEYS", prefix + "*"]) else { Issue.record("KEYS"); return }
            #expect(keys.count == 2)
            guard case .string(let key)? = keys.first, case .integer(let ttl) = try Self.admin(try TestServices.redisURL(), ["TTL", String(decoding: key, as: UTF8.self)]) else {
                Issue.record("TTL")
                return
            }
            #expect((3_500...3_600).contains(ttl))
        }
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, cacheDuration: 0)
            for _ in 0..<2 { #expect(try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))["cache_hit"] == false) }
            #expect(try await Self.calls(stack) == 2)
        }
    }

    @Test("an entry expires after cache_duration, and the next job calls again")
    func expiry() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack, cacheDuration: 1)
            _ = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))
            let prefix = "oneo:{\(try await Self.namespace(stack))-1}:cache:"
            let url = try TestServices.redisURL()
            try await waitUntil("the entry to expire", timeout: .seconds(10)) {
                guard case .array(let keys) = try Self.admin(url, ["KEYS", prefix + "*"]) else { return false }
                return keys.isEmpty
            }
            let again = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))
            #expect(again["cache_hit"] == false)
            #expect(try await Self.calls(stack) == 2)
        }
    }

    @Test("eight identical jobs at once make one provider call (single flight); the others complete as hits")
    func singleFlight() async throws {
        try await TestStack.with(processorHeld: true, simulatorLatencyMilliseconds: 500) { stack in
            try await Self.makePipeline(stack)
            var jobs: [String] = []
            for _ in 0..<8 { jobs.append(try await Self.createRecord(stack.api, company: "Initech")) }
            try await stack.cli(["tenant", "start", stack.tenant])
            var hits = 0
            for job in jobs {
                let done = try await Self.finished(stack.api, job)
                #expect(done["status"] == "completed")
                if done["cache_hit"] == true { hits += 1 }
            }
            #expect(try await Self.calls(stack) == 1)
            #expect(hits == 7)
        }
    }

    @Test("tenants never share an entry: the same prompt in another tenant calls again; each ACL user reaches only its own prefix and the cache's commands")
    func tenantIsolation() async throws {
        try await TestStack.with { stack in
            try await Self.makePipeline(stack)
            _ = try await Self.finished(stack.api, try await Self.createRecord(stack.api, company: "Initech"))
            let beta = try await stack.addTenant("beta", providerKey: "test-provider-key-2")
            try await Self.makePipeline(stack, api: beta)
            let theirs = try await Self.finished(beta, try await Self.createRecord(beta, company: "Initech"))
            #expect(theirs["cache_hit"] == false)
            #expect(try await Self.calls(stack) == 2)

            let namespace = try await Self.namespace(stack)
            let url = try TestServices.redisURL()
            let acme = "oneo-\(namespace)-tenant-1"
            let mine = "oneo:{\(namespace)-1}:cache:x"
            let others = "oneo:{\(namespace)-2}:cache:x"
            // ACL DRYRUN answers OK, or why the user may not.
            func allowed(_ command: [String]) throws -> Bool { try Self.admin(url, ["ACL", "DRYRUN", acme] + command) == .status("OK") }
            #expect(try allowed(["GET", mine]))
            #expect(try allowed(["SET", mine, "v", "EX", "10"]))
            #expect(try !allowed(["GET", others]))
            #expect(try !allowed(["SET", others, "v"]))
            #expect(try !allowed(["KEYS", "*"]))
            #expect(try !allowed(["FLUSHALL"]))
            #expect(try !allowed(["DEL", mine]))
            #expect(try !allowed(["CONFIG", "GET", "*"]))
            // The API's user pings (its diagnostics) and touches no key.
            let health = "oneo-\(namespace)-health"
            #expect(try Self.admin(url, ["ACL", "DRYRUN", health, "PING"]) == .status("OK"))
            #expect(try Self.admin(url, ["ACL", "DRYRUN", health, "GET", mine]) != .status("OK"))
            let diagnostics = try await stack.api.get("/ai-jobs/diagnostics/")
            #expect(diagnostics["redis"]?["ok"] == true, "\(diagnostics.body)")
        }
    }

    @Test("Redis stopped, restarted and flushed under load: no job fails, jobs run uncached meanwhile, and caching resumes by itself")
    func redisOutage() async throws {
        let redis = PrivateRedis()
        try await redis.start()
        do {
            try await self.outage(redis)
        } catch {
            await redis.stop()
            throw error
        }
        await redis.stop()
    }

    private func outage(_ redis: PrivateRedis) async throws {
        try await TestStack.with(tunables: ["REDIS_URL": redis.url, "ONEO_SUPERVISION_TENANT_POLL_MS": "300"]) { stack in
            try await Self.makePipeline(stack)
            var jobs: [String] = []
            func load(_ count: Int, company: String) async throws {
                for _ in 0..<count { jobs.append(try await Self.createRecord(stack.api, company: company)) }
            }
            try await load(5, company: "Initech")
            for job in jobs { #expect(try await Self.finished(stack.api, job)["status"] == "completed") }
            let callsUp = try await Self.calls(stack)
            await redis.stop()
            try await load(5, company: "Initech")
            for job in jobs.suffix(5) { #expect(try await Self.finished(stack.api, job)["status"] == "completed") }
            let callsDown = try await Self.calls(stack)
            try await redis.start()
            // Back: the supervisor applies the ACL users again, the processor logs in again, and
            // an entry stored now is hit again.
            try await waitUntil("caching to resume", timeout: .seconds(20), interval: .milliseconds(200)) {
                jobs.append(try await Self.createRecord(stack.api, company: "Hooli"))
                return try await Self.finished(stack.api, jobs.last!)["cache_hit"] == true
            }
            _ = try Self.admin(redis.url, ["FLUSHALL"])
            try await load(3, company: "Hooli")
            for job in jobs { #expect(try await Self.finished(stack.api, job)["status"] == "completed", "job \(job)") }
            #expect(try await stack.count("SELECT count(*) FROM ai_jobs WHERE status = 'failed'") == 0)
            // Up, the five made one call; down, the same prompt missed and was called again.
            #expect(callsUp == 1)
            #expect(callsDown > callsUp, "jobs ran uncached while Redis was down (calls: \(callsUp) → \(callsDown))")
        }
    }
}

/// A redis-server of the test's own, on a TCP port, that it stops and starts.
final class PrivateRedis: Sendable {
    let port = Int.random(in: 20_000...40_000)
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-redis-\(UInt32.random(in: 0 ... .max))").path
    private let process = Mutex<ManagedProcess?>(nil)

    var url: String { "redis://127.0.0.1:\(self.port)" }

    func start() async throws {
        try FileManager.default.createDirectory(atPath: self.directory, withIntermediateDirectories: true)
        let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) } ?? "/usr/bin/redis-server"
        let started = try ManagedProcess(
            executable, ["--port", String(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", self.directory],
            logFile: self.directory + "/redis.log"
        )
        self.process.withLock { $0 = started }
        let settings = try RedisSettings(url: self.url)
        try await waitUntil("the test's redis-server to answer on port \(self.port)", timeout: .seconds(10), interval: .milliseconds(20)) {
            (try? RedisConnection(settings, timeoutMilliseconds: 200).ping()) != nil
        }
    }

    func stop() async {
        guard let running = self.process.withLock({ $0.take() }) else { return }
        _ = await running.stop(grace: .seconds(5))
    }
}
