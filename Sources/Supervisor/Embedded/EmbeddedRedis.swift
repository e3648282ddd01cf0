import Foundation
import OneoWire
import OneoRedis
import OneoStore
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

/// A private Redis under the data directory: Unix socket only, no persistence (Redis holds only
/// what can be lost).
struct EmbeddedRedis {
    let directory: DataDirectory
    let account: ProcessAccount?
    /// The processors' group: when set, Redis runs with it as its group, so its socket (mode
    /// 0770) is reachable by processors and nobody else.
    let clientGroup: gid_t?

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
        return ChildSpec.foreign(role: .redis, name: "redis", program: executable, arguments: [
            "--port", "0",
            "--unixsocket", self.directory.redisSocket,
            "--unixsocketperm", self.clientGroup == nil ? "700" : "770",
            "--dir", self.directory.redisDirectory,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
        ], account: account, deathSignal: "SIGTERM")
    }

    /// Ready when it answers PING.
    func isReady() -> Bool {
        guard let connection = try? RedisConnection(self.directory.embeddedRedis, timeoutMilliseconds: 200) else { return false }
        return (try? connection.ping()) != nil
    }
}
