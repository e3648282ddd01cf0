import Foundation
import Logging
import OneoCore
import PostgresNIO

extension Supervisor {
    /// Starts processors for tenants with work, at once on a NOTIFY or within the poll interval,
    /// and stops those of tenants that are no longer active.
    func watchTenants() async {
        guard let services = self.services else { return }
        let (changes, notify) = AsyncStream<Void>.makeStream(bufferingPolicy: .bufferingNewest(1))
        await withDiscardingTaskGroup { group in
            group.addTask {
                await self.listen(services.database, on: JobChannel.tenantsChanged) { _ in notify.yield() }
            }
            group.addTask {
                await self.listen(services.database, on: JobChannel.jobsQueued) { payload in
                    guard let tenant = TenantID(parsing: payload) else { return }
                    await self.workQueued(for: tenant)
                }
            }
            group.addTask {
                while !Task.isCancelled {
                    notify.yield()
                    try? await Task.sleep(for: self.configuration.tenantPollInterval)
                }
            }
            for await _ in changes {
                guard !Task.isCancelled, !self.stopping else { break }
                await self.reconcileProcessors(services.directory)
            }
            group.cancelAll()
        }
    }

    /// Holds one connection in LISTEN on `channel`, reconnecting after failures (the poll covers
    /// what is missed meanwhile).
    private nonisolated func listen(_ database: PostgresClient, on channel: String, _ handle: @Sendable (String) async -> Void) async {
        while !Task.isCancelled {
            do {
                try await database.withConnection { connection in
                    try await connection.listen(on: channel) { notifications in
                        for try await notification in notifications { await handle(notification.payload) }
                    }
                }
            } catch {
                if Task.isCancelled { return }
                self.logger.warning("listener failed; relying on polling until it reconnects", metadata: ["channel": "\(channel)", "error": "\(SafeErrorDescription.of(error))"])
                try? await Task.sleep(for: .seconds(1))
            }
        }
    }

    /// Work was queued for a tenant: wake its processor (never blocking: a full socket means it
    /// has unread wake-ups already), or start one.
    func workQueued(for tenant: TenantID) async {
        guard !self.stopping else { return }
        if let name = self.processorOfTenant[tenant], let child = self.children[name] {
            self.demand(child)
            return
        }
        guard let services = self.services, self.tenantsBeingLookedUp.insert(tenant).inserted else { return }
        defer { self.tenantsBeingLookedUp.remove(tenant) }
        do {
            if let row = try await services.directory.tenant(tenant, logger: self.logger), row.active {
                self.demand(self.processorChild(for: row))
            }
        } catch {
            self.logger.error("reading a tenant failed; its work waits for the next poll", metadata: ["tenant.id": "\(tenant)", "error": "\(SafeErrorDescription.of(error))"])
        }
    }

    func processorChild(for tenant: TenantRuntime) -> SupervisedChild {
        let name = "processor:\(tenant.slug)"
        self.processorOfTenant[tenant.id] = name
        let child = self.addChild(name: name, role: .processor, launch: .processor(tenant.id, slug: tenant.slug))
        child.alwaysOn = tenant.alwaysOn
        if child.hold == .inactive, tenant.active { child.hold = nil }
        return child
    }

    /// The tenant of this processor has work, or must always run.
    func demand(_ child: SupervisedChild) {
        child.lastBusy = .now
        if child.pid != nil {
            if child.hold == .idle {
                child.workArrived = true
            } else {
                child.channel?.trySend(SupervisorMessage.wake)
            }
            return
        }
        switch child.hold {
        case .operatorStop, .shutdown: return
        case .idle, .inactive: child.hold = nil
        case nil: break
        }
        // A loop waiting out a backoff or a crash loop keeps its schedule.
        if child.loop == nil || child.lifecycle.state == .stopped { self.supervise(child) }
    }

    private func reconcileProcessors(_ directory: TenantDirectory) async {
        do {
            for tenant in try await directory.tenantsWanted(logger: self.logger) where !self.stopping {
                self.demand(self.processorChild(for: tenant))
            }
            let known = self.children.values.compactMap(\.tenant)
            guard !known.isEmpty else { return }
            let active = try await directory.active(among: known, logger: self.logger)
            for child in self.children.values where child.role == .processor {
                guard let tenant = child.tenant else { continue }
                if let alwaysOn = active[tenant] {
                    child.alwaysOn = alwaysOn
                    continue
                }
                guard child.hold != .inactive else { continue }
                self.logger.notice("tenant no longer active; stopping its processor", metadata: ["child": "\(child.name)"])
                child.hold = .inactive
                if child.pid != nil {
                    self.drain(child, timeout: self.configuration.drainTimeout)
                } else {
                    child.loop?.cancel()
                    child.lifecycle.hold()
                }
            }
        } catch {
            self.logger.error("reading tenants failed", metadata: ["error": "\(SafeErrorDescription.of(error))"])
        }
    }
}
