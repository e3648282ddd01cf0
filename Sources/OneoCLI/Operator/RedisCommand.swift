import ArgumentParser
import Foundation
import OneoWire
import OneoCore
import OneoRedis
import OneoStore
import PostgresNIO

/// `oneo-ai redis acl`: the ACL lines that give each tenant's processor its own Redis user. serve
/// applies them itself where it may (the embedded Redis, or a REDIS_URL whose user may run
/// `ACL SETUSER`); an administrator of a Redis that keeps ACLs to itself applies these instead.
struct RedisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "redis", abstract: "The result cache's Redis: each tenant's ACL user.", subcommands: [ACL.self]
    )

    struct ACL: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "acl",
            abstract: "Print the ACL SETUSER lines for every tenant (or one): its key prefix only, GET/SET/PING only.",
            discussion: "The lines hold each password's SHA-256 only (#…), as Redis stores it; the passwords themselves reach only the processors."
        )

        @OptionGroup var instance: InstanceOptions
        @Option(help: "Only this tenant's line.") var tenant: String?

        func run() async throws {
            let sealer = try KeySealer(masterKeyFile: self.instance.masterKeyPath)
            let wanted = self.tenant
            let (namespace, tenants) = try await withDatabase(self.instance) { database, logger in
                let namespace = try await InstanceSettings.cacheNamespace(database, logger: logger)
                var tenants: [(TenantID, String)] = []
                let rows = try await database.query("SELECT id, slug FROM tenants WHERE \(wanted)::text IS NULL OR slug = \(wanted) ORDER BY id", logger: logger)
                for try await (id, slug) in rows.decode((TenantID, String).self) { tenants.append((id, slug)) }
                return (namespace, tenants)
            }
            if let wanted, tenants.isEmpty { throw ValidationError("no tenant with slug '\(wanted)'") }
            if wanted == nil {
                let health = sealer.derivedSecret(purpose: CacheACL.healthPasswordPurpose(namespace: namespace))
                print("# the API (diagnostics: PING only)")
                print(CacheACL.setHealthUser(namespace: namespace, passwordHash: KeySealer.redisPasswordHash(health)).joined(separator: " "))
            }
            for (id, slug) in tenants {
                let password = sealer.derivedSecret(purpose: CacheACL.passwordPurpose(namespace: namespace, tenant: id))
                print("# \(slug)")
                print(CacheACL.setUser(namespace: namespace, tenant: id, passwordHash: KeySealer.redisPasswordHash(password)).joined(separator: " "))
            }
        }
    }
}
