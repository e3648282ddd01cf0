import Foundation
import OneoCore

/// A private Redis under the data directory: Unix socket only, no persistence (Redis holds only
/// what can be lost).
struct EmbeddedRedis {
    let directory: DataDirectory

    func serverSpec() throws -> ChildSpec {
        try FileManager.default.createDirectory(atPath: self.directory.redisDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let executable = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].first { FileManager.default.isExecutableFile(atPath: $0) }
        guard let executable else {
            throw EmbeddedServiceError(service: "redis", detail: "redis-server not found: install redis-server or set REDIS_URL")
        }
        return ChildSpec(role: .redis, name: "redis", executable: executable, arguments: [
            "--port", "0",
            "--unixsocket", self.directory.redisSocket,
            "--unixsocketperm", "700",
            "--dir", self.directory.redisDirectory,
            "--save", "",
            "--appendonly", "no",
            "--daemonize", "no",
            "--loglevel", "warning",
        ])
    }

    /// Ready when it answers PING.
    func isReady() -> Bool {
        guard let connection = try? RedisConnection(self.directory.embeddedRedis, timeoutMilliseconds: 200) else { return false }
        return (try? connection.ping()) != nil
    }
}
