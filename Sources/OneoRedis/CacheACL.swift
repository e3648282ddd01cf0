public import OneoWire

/// Each tenant's processor talks to Redis as its own ACL user, allowed only its tenant's cache
/// keys and only the commands the cache needs: a compromised processor cannot read, write or
/// flush another tenant's entries. Users and keys carry the instance's namespace as well, so two
/// deployments sharing a Redis never meet. The password is derived from the master key, so that
/// an administrator of an external Redis can apply the same lines once (`oneo-ai redis acl`).
public enum CacheACL {
    public static func username(namespace: String, tenant: TenantID) -> String { "oneo-\(namespace)-tenant-\(tenant.rawValue)" }

    /// `oneo:{<namespace>-<tenant>}:cache:` — the braces keep a tenant's keys in one Redis Cluster slot.
    public static func keyPrefix(namespace: String, tenant: TenantID) -> String { "oneo:{\(namespace)-\(tenant.rawValue)}:cache:" }

    /// The commands a processor may run: the cache's reads and writes, and a liveness ping.
    public static let commands = ["get", "set", "ping"]

    /// `ACL SETUSER` as an argument vector: the user is reset first, so what it could do before
    /// is gone, then allowed exactly this. The password goes as its SHA-256 (`#…`), never itself.
    public static func setUser(namespace: String, tenant: TenantID, passwordHash: String) -> [String] {
        ["ACL", "SETUSER", Self.username(namespace: namespace, tenant: tenant), "reset", "on", "#" + passwordHash,
         "~" + Self.keyPrefix(namespace: namespace, tenant: tenant) + "*", "resetchannels", "-@all"]
            + Self.commands.map { "+" + $0 }
    }

    /// The API's user: it pings Redis for the diagnostics and may do nothing else (no key).
    public static func healthUsername(namespace: String) -> String { "oneo-\(namespace)-health" }
    public static func healthPasswordPurpose(namespace: String) -> String { "redis-acl/\(namespace)/health" }

    public static func setHealthUser(namespace: String, passwordHash: String) -> [String] {
        ["ACL", "SETUSER", Self.healthUsername(namespace: namespace), "reset", "on", "#" + passwordHash, "resetchannels", "-@all", "+ping"]
    }

    /// The engine's own user of an embedded Redis (whose `default` user is off).
    public static let adminUsername = "oneo-admin"
    public static let adminPasswordPurpose = "redis-acl/admin"

    /// What the password of a tenant's user is derived from (`KeySealer.derivedSecret`).
    public static func passwordPurpose(namespace: String, tenant: TenantID) -> String { "redis-acl/\(namespace)/tenant/\(tenant.rawValue)" }
}
