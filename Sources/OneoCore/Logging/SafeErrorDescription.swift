import PostgresNIO

/// How errors are written to logs: enough for an operator to act on, nothing from the data.
/// PostgreSQL's own detail line can quote row values, so only its code and primary message pass.
public enum SafeErrorDescription {
    public static func of(_ error: any Error) -> String {
        if let error = error as? PSQLError {
            guard let info = error.serverInfo else { return "postgres: \(error.code)" }
            return "postgres \(info[.sqlState] ?? "?"): \(info[.message] ?? "")"
        }
        return String(describing: error)
    }
}
