import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
import OneoRedis

extension Supervisor {
    struct Embedded {
        var postgres: SupervisedChild?
        var redis: SupervisedChild?
    }

    func startEmbeddedServices() async throws -> Embedded {
        var embedded = Embedded()
        let account = ProcessAccount.forServers(groups: [self.databaseGroup].compactMap { $0 })
        try FileManager.default.createDirectory(atPath: self.configuration.dataDirectory.root, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o755])
        try FileManager.default.createDirectory(atPath: self.configuration.dataDirectory.runDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        if self.configuration.database == nil {
            let postgres = EmbeddedPostgres(directory: self.configuration.dataDirectory, account: account, clientGroup: self.databaseGroup, logger: self.logger)
            if let initdb = try postgres.initdbSpec() {
                self.logger.notice("initializing embedded PostgreSQL", metadata: ["path": "\(self.configuration.dataDirectory.postgresData)"])
                let spawned = await self.spawnThread.run { Result { () throws(SpawnError) in try Spawner.spawn(initdb) } }
                let child = try spawned.get()
                self.table.childStarted()
                self.io.watchOutput(of: "initdb", descriptor: child.output)
                let status = await self.table.waitForExit(child.pid)
                guard status == .exited(0) else {
                    throw EmbeddedServiceError(service: "initdb", detail: "failed with \(status); see its output above")
                }
            }
            let child = self.addChild(name: "postgres", role: .postgres, launch: .fixed(try postgres.serverSpec()))
            self.supervise(child)
            embedded.postgres = child
            try await self.waitUntil(child, deadline: .seconds(60)) { postgres.isReady() }
            try await postgres.requirePasswords()
            try await postgres.createDatabaseIfMissing()
        }
        if self.configuration.redis == nil {
            // Redis's socket is open to the processors' group (the API's as well): each processor
            // logs in as its tenant's cache user; its `default` user is off.
            let processors: gid_t? = geteuid() == 0 ? self.configuration.processorUIDBase : nil
            let redis = EmbeddedRedis(directory: self.configuration.dataDirectory, account: account, clientGroup: processors, admin: try self.embeddedRedisLogin())
            let child = self.addChild(name: "redis", role: .redis, launch: .fixed(try redis.serverSpec()))
            self.supervise(child)
            embedded.redis = child
            try await self.waitUntil(child, deadline: .seconds(30)) { redis.isReady() }
        }
        return embedded
    }

    /// The engine's login to the embedded Redis (whose `default` user is off).
    func embeddedRedisLogin() throws -> RedisSettings {
        let sealer = try KeySealer(masterKeyFile: self.configuration.masterKeyFile)
        return self.configuration.dataDirectory.embeddedRedis.login(
            as: CacheACL.adminUsername, password: sealer.derivedSecret(purpose: CacheACL.adminPasswordPurpose)
        )
    }

    func stopEmbedded(_ embedded: Embedded) async {
        // Redis first: nothing durable lives there; PostgreSQL last, after every client.
        if embedded.redis != nil { await self.stopAll(roles: [.redis], timeout: .seconds(10)) }
        if embedded.postgres != nil { await self.stopAll(roles: [.postgres], timeout: .seconds(30)) }
    }

    /// Polls a readiness check every 50 ms until it holds or the deadline passes.
    private func waitUntil(_ child: SupervisedChild, deadline: Duration, _ ready: @Sendable () -> Bool) async throws {
        let end = ContinuousClock.now + deadline
        while !ready() {
            guard ContinuousClock.now < end else {
                throw EmbeddedServiceError(service: child.name, detail: "not ready after \(deadline); see its log lines above")
            }
            if child.lifecycle.state == .crashLooping || (child.pid == nil && child.lifecycle.restarts > 0) {
                throw EmbeddedServiceError(service: child.name, detail: "exited during start (\(child.lifecycle.lastExit ?? "")); see its log lines above")
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        self.logger.info("embedded service ready", metadata: ["service": "\(child.name)"])
    }
}
