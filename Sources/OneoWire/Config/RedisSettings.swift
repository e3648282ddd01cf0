import Foundation

/// Where Redis is: parsed from `REDIS_URL` (`redis://host:port`, `unix:///path/redis.sock`) or the
/// embedded data directory's socket.
public struct RedisSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable, Codable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int)
    }

    public var endpoint: Endpoint

    public init(endpoint: Endpoint) {
        self.endpoint = endpoint
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
        default:
            throw ConfigurationError(key: "REDIS_URL", problem: "must be redis://host:port or unix:///path")
        }
    }

    public var description: String {
        switch self.endpoint {
        case .unixSocket(let path): return "redis socket=\(path)"
        case .tcp(let host, let port): return "redis \(host):\(port)"
        }
    }
}
