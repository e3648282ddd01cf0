import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore

extension Supervisor {
    /// Keeps the processors of always-on tenants running and stops those of tenants that are no
    /// longer active: at each poll, and at once when the queue manager relays a change. (Which
    /// tenants have work, the queue manager says with `need` frames.)
    func watchTenants() async {
        guard let services = self.services else { return }
        await withDiscardingTaskGroup { group in
            group.addTask {
                while !Task.isCancelled {
                    self.tenantsChanged.yield()
                    try? await Task.sleep(for: self.configuration.tenantPollInterval)
                }
            }
            for await _ in self.tenantChanges {
                guard !Task.isCancelled, !self.stopping else { break }
                await self.reconcileProcessors(services.directory)
            }
            group.cancelAll()
        }
    }

    /// The queue manager has work for a tenant with no processor connected: start one (or let a
    /// starting one be).
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
        // A loop waiting out a backoff or a crash loop keeps its schedule (`ChildState.demand`).
        let action = child.state.demand(now: .now, loopRunning: child.loop != nil, lifecycleStopped: child.lifecycle.state == .stopped)
        if action == .supervise { self.supervise(child) }
    }

    private func reconcileProcessors(_ directory: TenantDirectory) async {
        do {
            for tenant in try await directory.alwaysOn(logger: self.logger) where !self.stopping {
                self.demand(self.processorChild(for: tenant))
            }
            let known = Set(self.children.values.compactMap(\.tenant))
            guard !known.isEmpty else { return }
            let active = try await directory.active(among: Array(known), logger: self.logger)
            // Only the tenants asked about: a processor added while the query ran (its tenant
            // not in `known`) is not judged inactive for being absent from the answer.
            for child in self.children.values where child.role == .processor {
                guard let tenant = child.tenant, known.contains(tenant) else { continue }
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
