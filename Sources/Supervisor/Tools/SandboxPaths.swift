import Foundation
#if canImport(Glibc)
import Glibc
#endif
import OneoSandbox
import OneoWire

/// Where the executors and their policies are, for the supervisor: `oneo-tool` beside
/// `oneo-ai`, the policies in `SandboxDirectory`.
enum SandboxPaths {
    static func executor(beside executable: String) -> String {
        URL(fileURLWithPath: executable).deletingLastPathComponent().appendingPathComponent("oneo-tool").path
    }

    static func policy(tool: String, executable: String) -> String {
        SandboxDirectory.policyPath(tool: tool, in: SandboxDirectory.locate(executable: executable, environment: ProcessInfo.processInfo.environment))
    }

    /// The tools with an executor program and a policy on this machine: they are started and
    /// offered. Only when serve is root: the executor and its jails then run as a uid of their
    /// own; as serve's own uid, an escape would reach the master key.
    /// Web search only with a backend to ask.
    /// File search only with a database role of its own, reached by a Unix socket.
    static func startableTools(executable: String, searchURL: String?, fileSearch: Bool) -> [String] {
        guard geteuid() == 0, FileManager.default.isExecutableFile(atPath: Self.executor(beside: executable)) else { return [] }
        return ToolCatalog.available.sorted().filter { tool in
            (tool != "web_search" || searchURL != nil) && (tool != "file_search" || fileSearch)
                && FileManager.default.isReadableFile(atPath: Self.policy(tool: tool, executable: executable))
        }
    }

    /// A tool's policy as the router enforces it: its egress places and its timeout (none and
    /// 30 s when it cannot be read: the executor then refuses to run anyway).
    static func routing(tool: String, executable: String) -> (egress: [String], timeout: Duration) {
        do {
            let bytes = try SandboxDirectory.readPolicy(Self.policy(tool: tool, executable: executable))
            let policy = try SandboxPolicy(parsing: String(decoding: bytes, as: UTF8.self))
            return (policy.egress, .milliseconds(policy.timeoutMilliseconds))
        } catch {
            return ([], .seconds(30))
        }
    }
}
