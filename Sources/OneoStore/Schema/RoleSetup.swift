import Foundation
public import Logging
public import OneoWire
public import PostgresNIO

/// The API's and the queue manager's database roles (`roles.sql` says what each may do). The
/// supervisor applies them at every start with fresh passwords, which it hands to those two
/// children in their bootstrap frames; processors get no role. Where the connecting user may not
/// create roles (a managed database), nothing is changed and `statementsForAdministrator` is what
/// an administrator runs once.
public enum RoleSetup {
    public struct Roles: Sendable, Hashable {
        public let api: String
        public let queueManager: String
        /// The file_search executor's: it may only call the file functions, with a grant.
        public let files: String
    }

    /// Per database, so that two instances on one server never share (or rotate) a role: the
    /// name's readable part plus a hash of the exact name (`a-b` and `a_b` differ).
    public static func roles(forDatabase database: String) -> Roles {
        var base = String(String.UnicodeScalarView(database.lowercased().unicodeScalars.map { scalar in
            ("a"..."z").contains(scalar) || ("0"..."9").contains(scalar) ? scalar : "_"
        }))
        // PostgreSQL cuts names at 63 bytes: leave room for the hash and the suffix.
        if base.utf8.count > 40 { base = String(base.prefix(40)) }
        var hash: UInt32 = 2_166_136_261
        for byte in database.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
        let tag = String(hash, radix: 16)
        let name = base + "_" + String(repeating: "0", count: 8 - tag.count) + tag
        return Roles(api: name + "__api", queueManager: name + "__qmgr", files: name + "__files")
    }

    public enum Outcome: Sendable, Equatable {
        /// The roles exist, with these passwords able to log in.
        case applied
        /// The connecting user may not create roles: children keep its credentials.
        case notPermitted
    }

    /// Applies roles.sql. With passwords, the roles can log in with them from now on.
    public static func apply(
        _ roles: Roles, passwords: (api: String, queueManager: String, files: String)?, client: PostgresClient, logger: Logger
    ) async throws -> Outcome {
        var permitted = false
        for try await allowed in try await client.query(
            "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user", logger: logger
        ).decode(Bool.self) {
            permitted = allowed
        }
        guard permitted else { return .notPermitted }
        try await client.withTransaction(logger: logger) { connection in
            try await connection.query(
                """
                SELECT set_config('oneo.api_role', \(roles.api), true), set_config('oneo.qmgr_role', \(roles.queueManager), true),
                       set_config('oneo.api_password', \(passwords?.api ?? ""), true),
                       set_config('oneo.qmgr_password', \(passwords?.queueManager ?? ""), true),
                       set_config('oneo.files_role', \(roles.files), true), set_config('oneo.files_password', \(passwords?.files ?? ""), true)
                """,
                logger: logger
            )
            // Constant SQL compiled into the binary; its inputs are the settings bound above.
            try await connection.query(PostgresQuery(unsafeSQL: Self.script), logger: logger)
        }
        return .applied
    }

    /// What an administrator runs (as a user that may create roles) when `apply` was not permitted.
    public static func statementsForAdministrator(_ roles: Roles) -> String {
        """
        BEGIN;
        SELECT set_config('oneo.api_role', '\(roles.api)', true), set_config('oneo.qmgr_role', '\(roles.queueManager)', true),
               set_config('oneo.files_role', '\(roles.files)', true);
        \(Self.script)
        COMMIT;
        -- then give each role a password (ALTER ROLE … LOGIN PASSWORD …) and run serve with a
        -- DATABASE_URL of a user that may create roles, or keep the shared credentials.
        """
    }

    /// A password for one start: 32 random bytes as hex (no quoting issue anywhere it travels).
    public static func freshPassword() -> String {
        var generator = SystemRandomNumberGenerator()
        return (0..<32).map { _ in String(format: "%02x", UInt8.random(in: 0 ... .max, using: &generator)) }.joined()
    }

    static let script = String(decoding: PackageResources.roles_sql, as: UTF8.self)
}
