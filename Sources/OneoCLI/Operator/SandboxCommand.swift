import ArgumentParser
import Crypto
import Foundation
import OneoSandbox

/// `oneo-ai sandbox show TOOL`: a tool's sandbox policy as the executor will load it, expanded
/// (every layer, every rule with its number and reason) with the file's digest, so a reviewer
/// can check that what they read is what runs.
struct SandboxCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sandbox", abstract: "Show the tool executors' sandbox policies.", subcommands: [Show.self]
    )

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Print a tool's sandbox policy expanded, with its SHA-256 and the size of its seccomp program.",
            discussion: "The policies are read from --sandbox-dir, else ONEO_SANDBOX_DIR, else the sandbox/ folder of the checkout the binary was built in, else /usr/share/oneo-ai/sandbox."
        )

        @Argument(help: "The tool: code_interpreter.") var tool: String
        @Option(help: "The folder that holds <tool>.policy.") var sandboxDir: String?

        func run() throws {
            guard self.tool.allSatisfy({ $0.isLetter || $0 == "_" }) else { throw ValidationError("a tool name is letters and '_'") }
            let directory = self.sandboxDir ?? SandboxDirectory.locate(executable: CommandLine.arguments[0], environment: ProcessInfo.processInfo.environment)
            let path = SandboxDirectory.policyPath(tool: self.tool, in: directory)
            guard let data = FileManager.default.contents(atPath: path) else { throw ValidationError("no policy at \(path)") }
            let policy: SandboxPolicy
            do {
                policy = try SandboxPolicy(parsing: String(decoding: data, as: UTF8.self))
            } catch {
                throw ValidationError("\(path): \(error)")
            }
            let program = try SeccompProgram(policy: policy)
            let digest = SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined()
            print(Self.render(policy, path: path, digest: digest, program: program))
        }

        static func render(_ policy: SandboxPolicy, path: String, digest: String, program: SeccompProgram) -> String {
            func pad(_ text: String, _ width: Int) -> String { text.count >= width ? text + " " : text + String(repeating: " ", count: width - text.count) }
            var lines = [
                "\(policy.tool): \(path)",
                "sha256 \(digest)",
                "",
                "program     \(policy.program.joined(separator: " "))",
                "namespaces  \(policy.namespaces.map(\.rawValue).joined(separator: " "))",
                "identity    \(policy.uid):\(policy.gid) inside, mapped to the executor's unprivileged sandbox uid",
                "hostname    \(policy.hostname ?? "-")",
                "workdir     \(policy.workdir ?? "/")",
                "timeout     \(policy.timeoutMilliseconds) ms wall clock",
                "output      \(policy.outputBytes) bytes per stream",
                "",
                "filesystem (built from nothing, in order):",
            ]
            for mount in policy.mounts {
                let what = [mount.kind.rawValue, mount.source, mount.options].compactMap { $0 }.joined(separator: " ")
                lines.append("  " + pad(mount.target, 10) + pad(what, 48) + "— " + mount.why)
            }
            lines.append("")
            lines.append("limits:")
            for limit in policy.limits { lines.append("  " + pad(limit.resource.rawValue, 10) + pad("\(limit.value)", 14) + "— " + limit.why) }
            lines.append("")
            lines.append("seccomp: \(program.instructionCount) BPF instructions; anything not listed: \(policy.defaultAction); other ABIs (i386, x32): \(policy.badArchitectureAction)")
            for rule in policy.rules {
                let condition = rule.conditions.map(\.text).joined(separator: " and ")
                lines.append("  " + pad(rule.action.description, 14) + pad("\(rule.syscall) (\(rule.number))", 26) + pad(condition, 30) + "— " + rule.why)
            }
            if !policy.lockedAfterStart.isEmpty {
                lines.append("")
                lines.append("after start (a second filter, the program's first act): kill-process on \(policy.lockedAfterStart.joined(separator: ", "))")
            }
            if !policy.egress.isEmpty {
                lines.append("")
                lines.append("egress (through the broker): \(policy.egress.joined(separator: ", "))")
            }
            return lines.joined(separator: "\n")
        }
    }
}
