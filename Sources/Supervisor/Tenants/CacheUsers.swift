import Logging
import NIOPosix
import OneoWire
import OneoCore
import OneoRedis

/// Each processor's Redis login: its tenant's ACL user (only the tenant's cache prefix, only
/// GET/SET/PING), applied before the processor starts, and applied again for every running
/// processor when Redis has lost them (a restart without persistence): the API's health user,
/// always applied, is gone. Where we may not apply them (an external Redis whose
/// administrator keeps ACLs), the processor still logs in with the derived password, which works
/// once `oneo-ai redis acl` has been applied there, and caches nothing until then.
extension Supervisor {
    /// The processor's Redis settings, its user applied first.
    func cacheLogin(for tenant: TenantID, services: Services) async -> RedisSettings {
        let (settings, password) = Self.cacheUser(tenant, services)
        do {
            try await Self.applyCacheUsers([(tenant, password)], services: services, onlyWhenLost: false)
        } catch {
            self.logger.warning("could not apply the tenant's Redis ACL user; its processor caches nothing until `oneo-ai redis acl` is applied", metadata: [
                "tenant.id": "\(tenant)", "error": "\(SafeErrorDescription.of(error))",
            ])
        }
        return settings
    }

    /// The API's login: a user that may only PING (its diagnostics), applied before the API starts.
    func healthLogin(services: Services) async -> RedisSettings {
        let namespace = services.cacheNamespace
        let password = services.sealer.derivedSecret(purpose: CacheACL.healthPasswordPurpose(namespace: namespace))
        do {
            let admin = services.redisSettings
            try await NIOThreadPool.singleton.runIfActive {
                let connection = try RedisConnection(admin, timeoutMilliseconds: 500)
                _ = try connection.command(CacheACL.setHealthUser(namespace: namespace, passwordHash: KeySealer.redisPasswordHash(password)))
            }
        } catch {
            self.logger.warning("could not apply the API's Redis health user; its Redis check fails until `oneo-ai redis acl` is applied", metadata: [
                "error": "\(SafeErrorDescription.of(error))",
            ])
        }
        return services.redisSettings.login(as: CacheACL.healthUsername(namespace: namespace), password: password)
    }

    /// Every tenant poll: when Redis lost its ACL users, the running processors' are applied again.
    func watchCacheUsers() async {
        guard let services = self.services else { return }
        while !Task.isCancelled, !self.stopping {
            try? await Task.sleep(for: self.configuration.tenantPollInterval)
            let tenants = Set(self.children.values.compactMap { $0.role == .processor ? $0.tenant : nil })
            do {
                let applied = try await Self.applyCacheUsers(tenants.map { ($0, Self.cacheUser($0, services).password) }, services: services, onlyWhenLost: true)
                if applied > 0 { self.logger.notice("Redis had lost the processors' ACL users; applied again", metadata: ["tenants": "\(applied)"]) }
            } catch {
                self.logger.debug("Redis did not answer the ACL check", metadata: ["error": "\(SafeErrorDescription.of(error))"])
            }
        }
    }

    private static func cacheUser(_ tenant: TenantID, _ services: Services) -> (settings: RedisSettings, password: String) {
        let namespace = services.cacheNamespace
        let password = services.sealer.derivedSecret(purpose: CacheACL.passwordPurpose(namespace: namespace, tenant: tenant))
        let settings = services.redisSettings.login(
            as: CacheACL.username(namespace: namespace, tenant: tenant), password: password,
            keyPrefix: CacheACL.keyPrefix(namespace: namespace, tenant: tenant)
        )
        return (settings, password)
    }

    /// Applies the users (with `onlyWhenLost`: only when Redis has lost the API's health user, which is
    /// then applied too: an ordinary key as the marker could be evicted). Returns how many it
    /// applied. Blocking hiredis calls, on the thread pool.
    @discardableResult
    private static func applyCacheUsers(_ users: [(TenantID, String)], services: Services, onlyWhenLost: Bool) async throws -> Int {
        let admin = services.redisSettings
        let namespace = services.cacheNamespace
        return try await NIOThreadPool.singleton.runIfActive {
            let connection = try RedisConnection(admin, timeoutMilliseconds: 500)
            if onlyWhenLost, try connection.command(["ACL", "GETUSER", CacheACL.healthUsername(namespace: namespace)]) != .null { return 0 }
            if onlyWhenLost {
                let health = services.sealer.derivedSecret(purpose: CacheACL.healthPasswordPurpose(namespace: namespace))
                _ = try connection.command(CacheACL.setHealthUser(namespace: namespace, passwordHash: KeySealer.redisPasswordHash(health)))
            }
            for (tenant, password) in users {
                _ = try connection.command(CacheACL.setUser(namespace: namespace, tenant: tenant, passwordHash: KeySealer.redisPasswordHash(password)))
            }
            return users.count
        }
    }
}
