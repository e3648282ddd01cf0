import Foundation

/// Where PostgreSQL is and who we are to it: parsed from `DATABASE_URL` or derived from the
/// embedded data directory. Children receive it in their bootstrap frame, never in argv or env.
public struct DatabaseSettings: Sendable, Hashable, Codable, CustomStringConvertible {
    public enum Endpoint: Sendable, Hashable, Codable {
        case unixSocket(path: String)
        case tcp(host: String, port: Int, requireTLS: Bool)
    }

    public var endpoint: Endpoint
    public var username: String
    public var password: String?
    public var database: String

    public init(endpoint: Endpoint, username: String, password: String?, database: String) {
        self.endpoint = endpoint
        self.username = username
        self.password = password
        self.database = database
    }

    /// Parses `postgres://user:password@host:port/db?sslmode=require`, or a socket directory as
    /// `postgres://user@/db?host=/path/to/dir` (libpq's convention).
    public init(url: String) throws(ConfigurationError) {
        guard let components = URLComponents(string: url), ["postgres", "postgresql"].contains(components.scheme ?? "") else {
            throw ConfigurationError(key: "DATABASE_URL", problem: "must be a postgres:// URL")
        }
        let query = Dictionary((components.queryItems ?? []).map { ($0.name, $0.value ?? "") }, uniquingKeysWith: { $1 })
        let database = String(components.path.drop(while: { $0 == "/" }))
        self.username = components.user.flatMap { $0.removingPercentEncoding } ?? "postgres"
        self.password = components.password.flatMap { $0.removingPercentEncoding }
        self.database = database.isEmpty ? self.username : database
        if let socketDirectory = query["host"], socketDirectory.hasPrefix("/") {
            let port = components.port ?? 5432
            self.endpoint = .unixSocket(path: "\(socketDirectory)/.s.PGSQL.\(port)")
        } else {
            guard let host = components.host, !host.isEmpty else {
                throw ConfigurationError(key: "DATABASE_URL", problem: "names no host")
            }
            let sslmode = query["sslmode"] ?? "prefer"
            self.endpoint = .tcp(host: host, port: components.port ?? 5432, requireTLS: ["require", "verify-ca", "verify-full"].contains(sslmode))
        }
    }

    /// The same server, another database on it (tests make one database per test).
    public func withDatabase(_ name: String) -> DatabaseSettings {
        var copy = self
        copy.database = name
        return copy
    }

    /// Passwords never appear in descriptions or logs.
    public var description: String {
        switch self.endpoint {
        case .unixSocket(let path): return "postgres user=\(self.username) db=\(self.database) socket=\(path)"
        case .tcp(let host, let port, _): return "postgres user=\(self.username) db=\(self.database) host=\(host):\(port)"
        }
    }
}

/// A configuration value that cannot be used, naming the flag, variable or key at fault.
public struct ConfigurationError: Error, Hashable, Sendable, CustomStringConvertible {
    public let key: String
    public let problem: String

    public init(key: String, problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "\(self.key) \(self.problem)" }
}
