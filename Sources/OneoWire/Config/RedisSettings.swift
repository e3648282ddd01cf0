import Foundation

/// Where Redis is: parsed from `REDIS_URL` (`redis://host:port`, `unix:///path/redis.sock`) or the
/// embedded data directory's socket.
public struct RedisSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable, Codable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int)
    }

    public var endpoint: Endpoint
    /// An ACL user to log in as (a processor's: its tenant's cache prefix only). The password is
    /// derived from the master key and travels only in the bootstrap frame; never printed here.
    public var username: String?
    public var password: String?
    /// The only keys this login may touch (a processor's cache prefix); nil for the engine's own.
    public var keyPrefix: String?

    public init(endpoint: Endpoint) {
        self.endpoint = endpoint
    }

    /// The same Redis, logged in as `username`.
    public func login(as username: String, password: String, keyPrefix: String? = nil) -> RedisSettings {
        var settings = self
        settings.username = username
        settings.password = password
        settings.keyPrefix = keyPrefix
        return settings
    }

    public init(url: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: url) else {
            throw ConfigurationError(key: "REDIS_URL", problem: "is not a URL")
        }
        switch components.scheme {
        case "unix":
            guard !components.path.isEmpty else { throw ConfigurationError(key: "REDIS_URL", problem: "names no socket path") }
            self.endpoint = .unixSocket(path: components.path)
        case "redis":
            self.endpoint = .tcp(host: components.host ?? "127.0.0.1", port: components.port ?? 6379)
            // redis://user:password@host:port — the user the engine applies ACLs as (the default
            // user when only a password is given).
            if let password = components.password, !password.isEmpty {
                self.username = components.user.flatMap { $0.isEmpty ? nil : $0 } ?? "default"
                self.password = password
            }
        default:
            throw ConfigurationError(key: "REDIS_URL", problem: "must be redis://host:port or unix:///path")
        }
    }

    public var description: String {
        let user = self.username.map { " user=\($0)" } ?? ""
        switch self.endpoint {
        case .unixSocket(let path): return "redis socket=\(path)\(user)"
        case .tcp(let host, let port): return "redis \(host):\(port)\(user)"
        }
    }
}
