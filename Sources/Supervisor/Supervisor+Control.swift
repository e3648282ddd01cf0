import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore

extension Supervisor {
    /// One operator request from the control socket. Never throws: every failure is a reply.
    func handle(_ request: ControlRequest) async -> ControlReply {
        switch request.command {
        case .status:
            return ControlReply(children: self.status())
        case .restart, .stop, .start:
            guard let slug = request.tenant, !slug.isEmpty else {
                return ControlReply(error: ControlError(code: "tenant_required", message: "\(request.command.rawValue) needs a tenant slug"))
            }
            guard !self.stopping else {
                return ControlReply(error: ControlError(code: "shutting_down", message: "the supervisor is shutting down"))
            }
            let timeout = Duration.seconds(max(0, min(request.timeoutSeconds ?? Int(self.configuration.drainTimeout / .seconds(1)), 3600)))
            do {
                let child = try await self.processor(slug: slug)
                switch request.command {
                case .restart: try await self.restart(child, timeout: timeout)
                case .stop: try await self.stop(child, timeout: timeout)
                case .start, .status: try await self.start(child)
                }
                return ControlReply(children: [self.status(of: child)])
            } catch let error as ControlError {
                return ControlReply(error: error)
            } catch {
                return ControlReply(error: ControlError(code: "internal", message: SafeErrorDescription.of(error)))
            }
        }
    }

    func status() -> [ChildStatus] {
        let order: [ChildSpec.Role] = [.postgres, .redis, .api, .qmgr, .processor, .setup]
        return self.children.values
            .sorted { (order.firstIndex(of: $0.role) ?? 9, $0.name) < (order.firstIndex(of: $1.role) ?? 9, $1.name) }
            .map(self.status(of:))
    }

    func status(of child: SupervisedChild) -> ChildStatus {
        var detail = child.hold?.rawValue
        switch child.lifecycle.phase {
        case .backoff(let until): detail = "restarts in \(Self.seconds(until - .now)) s"
        case .crashLooping(let until): detail = "held back; next try in \(Self.seconds(until - .now)) s"
        default: if child.alwaysOn, detail == nil { detail = "always on" }
        }
        return ChildStatus(
            name: child.name, role: child.role.rawValue, tenant: child.slug, pid: child.pid, state: child.lifecycle.state,
            uptimeSeconds: child.lifecycle.upSince.map { Self.seconds(.now - $0) },
            restarts: child.lifecycle.restarts,
            jobsInFlight: child.role == .processor ? child.inFlight : nil,
            lastError: child.lifecycle.lastExit, detail: detail
        )
    }

    /// A processor's health for its own tenant's `worker_health`.
    func health(of child: SupervisedChild) -> ProcessorHealth {
        let status = self.status(of: child)
        return ProcessorHealth(
            state: status.state.rawValue, uptimeSeconds: status.uptimeSeconds, restarts: status.restarts,
            jobsInFlight: child.state.inFlight, jobsCompleted: child.state.completed,
            lastHeartbeatSecondsAgo: child.pid == nil ? nil : Self.seconds(.now - child.state.lastHeard),
            detail: status.detail, lastExit: status.lastError.map(Self.exitCategory),
            providerCall: child.pid == nil ? nil : child.providerCall.map { entry in
                var aged = entry.call
                aged.ageMilliseconds += Int((ContinuousClock.now - entry.heard) / .milliseconds(1))
                return aged
            }
        )
    }

    /// How a processor's last run ended, as its tenant may see it: a category, never the detail
    /// (paths, uids, database errors are the operator's, in `oneo-ai status`).
    static func exitCategory(_ detail: String) -> String {
        if detail.hasPrefix("signal") || detail.contains("signal ") { return "killed" }
        if detail.hasPrefix("exit code") { return "exited" }
        return "failed_to_start"
    }

    private static func seconds(_ duration: Duration) -> Double {
        (Double(duration / .milliseconds(1)) / 1000).rounded(toPlaces: 1)
    }

    /// The tenant's processor child, created (stopped) if it never ran.
    private func processor(slug: String) async throws -> SupervisedChild {
        if let child = self.children["processor:\(slug)"] { return child }
        guard let services = self.services else { throw ControlError(code: "not_ready", message: "the supervisor is still starting") }
        guard let tenant = try await services.directory.tenant(slug: slug, logger: self.logger) else {
            throw ControlError(code: "unknown_tenant", message: "no tenant '\(slug)'")
        }
        return self.processorChild(for: tenant)
    }

    /// Drains the processor up to `timeout`, then starts it again at once; replies once the new
    /// one is ready. Nothing of any other tenant is touched.
    private func restart(_ child: SupervisedChild, timeout: Duration) async throws {
        self.logger.notice("operator restart", metadata: ["child": "\(child.name)", "drain.timeout": "\(timeout)"])
        guard child.pid != nil else { return try await self.start(child) }
        let generation = child.generation
        child.hold = nil
        child.restartRequested = true
        self.drain(child, timeout: timeout)
        let deadline = ContinuousClock.now + timeout + self.configuration.killGrace + .seconds(30)
        let ready = await self.wait(until: deadline) { child.generation != generation && child.lifecycle.state == .running }
        guard ready else { throw self.notReady(child) }
    }

    private func stop(_ child: SupervisedChild, timeout: Duration) async throws {
        self.logger.notice("operator stop", metadata: ["child": "\(child.name)", "drain.timeout": "\(timeout)"])
        child.hold = .operatorStop
        child.restartRequested = false
        guard child.pid != nil else {
            child.loop?.cancel()
            child.lifecycle.hold()
            return
        }
        self.drain(child, timeout: timeout)
        let stopped = await self.wait(until: .now + timeout + self.configuration.killGrace + .seconds(5)) { child.pid == nil }
        guard stopped else { throw ControlError(code: "timeout", message: "\(child.name) has not exited yet; it will be killed") }
    }

    private func start(_ child: SupervisedChild) async throws {
        self.logger.notice("operator start", metadata: ["child": "\(child.name)"])
        child.hold = nil
        child.lifecycle.operatorStart()
        if child.pid == nil, !child.preparing {
            self.supervise(child)
        }
        let ready = await self.wait(until: .now + .seconds(30)) { child.lifecycle.state == .running }
        guard ready else { throw self.notReady(child) }
    }

    private func notReady(_ child: SupervisedChild) -> ControlError {
        ControlError(code: "not_ready", message: "\(child.name) is \(child.lifecycle.state.rawValue)\(child.lifecycle.lastExit.map { " (last exit: \($0))" } ?? "")")
    }
}

extension Double {
    fileprivate func rounded(toPlaces places: Int) -> Double {
        let scale = pow(10, Double(places))
        return (self * scale).rounded() / scale
    }
}
