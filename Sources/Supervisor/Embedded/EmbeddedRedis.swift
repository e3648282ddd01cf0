import Foundation
import OneoWire
import OneoRedis
import OneoStore
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

/// A private Redis under the data directory: Unix socket only, no persistence (Redis holds only
/// what can be lost). Its `default` user is off: every connection logs in, the engine as
/// `oneo-admin`, each processor as its tenant's cache user (`CacheACL`). Its memory is bounded,
/// least recently used entries go first, and no value is larger than 1 MiB, so the cache cannot
/// starve the host (tenants share the 256 MB: one busy tenant can evict another's entries).
struct EmbeddedRedis {
    let directory: DataDirectory
    let account: ProcessAccount?
    /// The processors' group: when set, Redis runs with it as its group, so its socket (mode
    /// 0770) is reachable by processors and nobody else.
    let clientGroup: gid_t?
    /// The engine's login (`oneo-admin`, its password derived from the master key).
    let admin: RedisSettings

    /// The users Redis starts with: `default` off, the engine's admin by its password's SHA-256.
    var aclFile: String {
        "user default off\nuser \(CacheACL.adminUsername) on #\(KeySealer.redisPasswordHash(self.admin.password ?? "")) ~* &* +@all\n"
    }

    func serverSpec() throws -> ChildSpec {
        try FileManager.default.createDirectory(atPath: self.directory.redisDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let executable else {
            throw EmbeddedServiceError(service: "redis", detail: "redis-server not found: install redis-server or set REDIS_URL")
        }
        var account = self.account
        if let group = self.clientGroup, let server = account {
            account = ProcessAccount(uid: server.uid, gid: group)
            try server.own(self.directory.redisDirectory)
            try grantGroupPassage(self.directory.redisDirectory, group: group)
        }
        // Private from its first byte, never through a link, handed to Redis's account by its
        // descriptor (the directory is that account's).
        let aclPath = self.directory.redisDirectory + "/users.acl"
        try EmbeddedPostgres.writePrivately(self.aclFile, to: aclPath, owner: account, service: "redis")
        return ChildSpec.foreign(role: .redis, name: "redis", program: executable, arguments: [
            "--port", "0",
            "--unixsocket", self.directory.redisSocket,
            "--unixsocketperm", self.clientGroup == nil ? "700" : "770",
            "--dir", self.directory.redisDirectory,
            "--save", "",
            "--appendonly", "no",
            "--aclfile", aclPath,
            "--maxmemory", "256mb",
            "--maxmemory-policy", "allkeys-lru",
            "--proto-max-bulk-len", "1mb",
            // A processor cannot hold every connection: the clients Redis takes are bounded.
            "--maxclients", "4096",
            "--daemonize", "no",
            "--loglevel", "warning",
        ], account: account, deathSignal: "SIGTERM")
    }

    /// Ready when it answers PING.
    func isReady() -> Bool {
        guard let connection = try? RedisConnection(self.admin, timeoutMilliseconds: 200) else { return false }
        return (try? connection.ping()) != nil
    }
}
