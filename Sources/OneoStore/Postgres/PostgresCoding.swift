public import NIOCore
public import OneoWire
public import PostgresNIO
import NIOSSL

// How the wire's value types are bound and read by PostgresNIO: kept here, so that a program
// that only speaks frames does not link a database driver.

/// A value stored as one `bigint`: ids and money. The coding is written once, here.
public protocol PostgresInt64Value: PostgresEncodable, PostgresNonThrowingEncodable, PostgresDecodable {
    var rawValue: Int64 { get }
    init(_ rawValue: Int64)
}

extension PostgresInt64Value {
    public static var psqlType: PostgresDataType { .int8 }
    public static var psqlFormat: PostgresFormat { .binary }

    public func encode<JSONEncoder: PostgresJSONEncoder>(
        into byteBuffer: inout ByteBuffer,
        context: PostgresEncodingContext<JSONEncoder>
    ) {
        self.rawValue.encode(into: &byteBuffer, context: context)
    }

    public init<JSONDecoder: PostgresJSONDecoder>(
        from byteBuffer: inout ByteBuffer,
        type: PostgresDataType,
        format: PostgresFormat,
        context: PostgresDecodingContext<JSONDecoder>
    ) throws {
        self.init(try Int64(from: &byteBuffer, type: type, format: format, context: context))
    }
}

extension Identifier: PostgresInt64Value {}
extension Microdollars: PostgresInt64Value {}

/// Binds and reads JSON values as `jsonb`, through PostgresNIO's JSON codable support.
extension JSONValue: PostgresEncodable, PostgresDecodable {}

extension DatabaseSettings {
    /// - Parameter applicationName: how the connections show in `pg_stat_activity` (`oneo-api`,
    ///   `oneo-qmgr`, …): an operator sees which process holds which connection.
    public func clientConfiguration(maximumConnections: Int, applicationName: String = "oneo") -> PostgresClient.Configuration {
        var configuration: PostgresClient.Configuration
        switch self.endpoint {
        case .unixSocket(let path):
            configuration = .init(unixSocketPath: path, username: self.username, password: self.password, database: self.database)
        case .tcp(let host, let port, let requireTLS):
            configuration = .init(
                host: host, port: port, username: self.username, password: self.password, database: self.database,
                tls: requireTLS ? .require(.makeClientConfiguration()) : .prefer(.makeClientConfiguration())
            )
        }
        configuration.options.maximumConnections = maximumConnections
        configuration.options.minimumConnections = 0
        configuration.options.additionalStartupParameters = [("application_name", applicationName)]
        return configuration
    }
}

/// PostgreSQL's own detail line can quote row values, so only its code and primary message pass.
extension PSQLError: SafelyDescribable {
    public var safeDescription: String {
        guard let info = self.serverInfo else { return "postgres: \(self.code)" }
        return "postgres \(info[.sqlState] ?? "?"): \(info[.message] ?? "")"
    }
}
