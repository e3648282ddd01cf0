import CPostgresClient
import Glibc

/// One libpq connection, owned here: the file_search executor's, as its role, over the database
/// socket bound into its jail. Every statement is a call of a file function with bound text
/// parameters.
final class PostgresConnection {
    private let handle: OpaquePointer


    init(socketDirectory: String, database: String, user: String, password: String) throws {
        let keys = ["host", "port", "dbname", "user", "password", "connect_timeout", "application_name"]
        let values = [socketDirectory, "5432", database, user, password, "5", "oneo-file-search"]
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        func c(_ text: String) -> UnsafePointer<CChar> {
            let copy = strdup(text)!
            owned.append(copy)
            return UnsafePointer(copy)
        }
        var keyPointers: [UnsafePointer<CChar>?] = keys.map { c($0) } + [nil]
        var valuePointers: [UnsafePointer<CChar>?] = values.map { c($0) } + [nil]
        guard let handle = PQconnectdbParams(&keyPointers, &valuePointers, 0) else { throw ToolFailure(message: "libpq could not make a connection") }
        guard PQstatus(handle) == CONNECTION_OK else {
            let message = String(cString: PQerrorMessage(handle))
            PQfinish(handle)
            throw ToolFailure(message: "connecting to the database failed: \(message.prefix(200))")
        }
        self.handle = handle
    }

    deinit {
        PQfinish(self.handle)
    }

    /// Runs `sql` with text parameters (nil: NULL) and returns its rows as text (nil: NULL).
    func query(_ sql: String, _ parameters: [String?]) throws -> [[String?]] {
        var owned: [UnsafeMutablePointer<CChar>] = []
        defer { owned.forEach { free($0) } }
        var values: [UnsafePointer<CChar>?] = parameters.map { parameter in
            guard let parameter else { return nil }
            let copy = strdup(parameter)!
            owned.append(copy)
            return UnsafePointer(copy)
        }
        guard let result = PQexecParams(self.handle, sql, Int32(parameters.count), nil, &values, nil, nil, 0) else {
            throw ToolFailure(message: "the database did not answer")
        }
        defer { PQclear(result) }
        let status = PQresultStatus(result)
        guard status == PGRES_TUPLES_OK || status == PGRES_COMMAND_OK else {
            throw ToolFailure(message: "the database refused: \(String(cString: PQresultErrorMessage(result)).prefix(200))")
        }
        var rows: [[String?]] = []
        for row in 0..<PQntuples(result) {
            rows.append((0..<PQnfields(result)).map { column in
                PQgetisnull(result, row, column) == 1 ? nil : String(cString: PQgetvalue(result, row, column))
            })
        }
        return rows
    }
}
