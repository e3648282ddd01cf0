import ArgumentParser
import Foundation
import OneoWire
import OneoStore
import OneoCore

/// Sends one request to the running supervisor of the instance, failing with the supervisor's
/// own error message.
func control(_ request: ControlRequest, instance: InstanceOptions, timeout: Duration) async throws -> ControlReply {
    let reply = try await ControlClient.send(request, path: instance.dataDirectory.controlSocket, timeout: timeout)
    if let error = reply.error { throw error }
    return reply
}

struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show every child of the running serve: state, pid, uptime, restarts, jobs in flight, last error.",
        discussion: "States: starting, running, draining, stopped, backoff, crash-looping. --json prints {\"children\": [...]}."
    )

    @OptionGroup var instance: InstanceOptions

    @Flag(help: "Print JSON for machines.")
    var json = false

    func run() async throws {
        let reply = try await control(ControlRequest(command: .status), instance: self.instance, timeout: .seconds(10))
        let children = reply.children ?? []
        if self.json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(ControlReply(children: children)), as: UTF8.self))
        } else {
            print(StatusTable.render(children))
        }
    }
}

enum StatusTable {
    static func render(_ children: [ChildStatus]) -> String {
        let header = ["CHILD", "TENANT", "PID", "STATE", "UPTIME", "RESTARTS", "IN FLIGHT", "LAST ERROR / DETAIL"]
        let rows = children.map { child in
            [
                child.name, child.tenant ?? "-", child.pid.map(String.init) ?? "-", child.state.rawValue,
                child.uptimeSeconds.map(Self.uptime) ?? "-", String(child.restarts), child.jobsInFlight.map(String.init) ?? "-",
                [child.lastError, child.detail].compactMap { $0 }.joined(separator: "; "),
            ]
        }
        let widths = (0..<header.count).map { column in ([header] + rows).map { $0[column].count }.max() ?? 0 }
        return ([header] + rows).map { row in
            row.enumerated().map { $1.padding(toLength: widths[$0], withPad: " ", startingAt: 0) }.joined(separator: "  ")
                .trimmingCharacters(in: .whitespaces)
        }.joined(separator: "\n")
    }

    static func uptime(_ seconds: Double) -> String {
        let total = Int(seconds)
        if total < 60 { return String(format: "%.1fs", seconds) }
        if total < 3600 { return "\(total / 60)m\(total % 60)s" }
        return "\(total / 3600)h\(total % 3600 / 60)m"
    }
}

extension TenantCommand {
    struct Restart: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Restart the tenant's processor alone: it drains its in-flight jobs (up to --timeout; the rest are released for retry) and starts again.",
            discussion: "No other tenant's processor or job is touched. Returns once the new processor is ready."
        )
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Option(help: "Seconds to let in-flight jobs finish.") var timeout: Int = 30

        func run() async throws {
            let reply = try await control(ControlRequest(command: .restart, tenant: self.slug, timeoutSeconds: self.timeout), instance: self.instance, timeout: .seconds(self.timeout + 60))
            print(StatusTable.render(reply.children ?? []))
        }
    }

    struct Stop: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Stop the tenant's processor (draining up to --timeout) and keep it stopped until `tenant start` or serve restarts.",
            discussion: "Its jobs keep queueing meanwhile; none is lost."
        )
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String
        @Option(help: "Seconds to let in-flight jobs finish.") var timeout: Int = 30

        func run() async throws {
            let reply = try await control(ControlRequest(command: .stop, tenant: self.slug, timeoutSeconds: self.timeout), instance: self.instance, timeout: .seconds(self.timeout + 60))
            print(StatusTable.render(reply.children ?? []))
        }
    }

    struct Start: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Start the tenant's processor now: after `tenant stop`, or out of crash-looping once the cause is fixed."
        )
        @OptionGroup var instance: InstanceOptions
        @Argument(help: "The tenant's slug.") var slug: String

        func run() async throws {
            let reply = try await control(ControlRequest(command: .start, tenant: self.slug), instance: self.instance, timeout: .seconds(60))
            print(StatusTable.render(reply.children ?? []))
        }
    }
}
