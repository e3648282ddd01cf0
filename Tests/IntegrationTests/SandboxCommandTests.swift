import Foundation
import OneoTesting
import StackControl
import Testing

/// `oneo-ai sandbox show TOOL`: what a reviewer reads is the policy the executor loads, expanded.
@Suite("sandbox show")
struct SandboxCommandTests {
    @Test("each tool's policy is shown with its digest, its rules and reasons, its after-start lock and its egress", arguments: [
        ("code_interpreter", nil, nil), ("web_search", "search-backend", "execveat"), ("image_generation", "tenant-provider", "execveat"),
        ("file_search", nil, "execveat"),
    ] as [(String, String?, String?)])
    func show(tool: String, egress: String?, locked: String?) async throws {
        let directory = try TestServices.temporaryDirectory("oneo-sandbox-show")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try await ManagedProcess.run(TestServices.executable("oneo-ai"), ["sandbox", "show", tool], logFile: directory + "/show.log")
        // The digest shown is the file's: what a reviewer hashes is what was loaded.
        let file = FileManager.default.currentDirectoryPath + "/sandbox/\(tool).policy"
        let sum = try await ManagedProcess.run("/usr/bin/sha256sum", [file], logFile: directory + "/sum.log")
        let digest = try #require(sum.split(separator: " ").first.map(String.init))
        #expect(output.contains("\(tool): "), "\(output)")
        #expect(output.contains("sha256 \(digest)"), "\(output)")
        #expect(output.contains("clone3"), "the rules are listed")
        #expect(output.contains("— "), "each with its reason")
        if let egress { #expect(output.contains("egress (through the broker): \(egress)")) } else { #expect(!output.contains("egress (through the broker)")) }
        if let locked { #expect(output.contains("after start") && output.contains(locked)) } else { #expect(!output.contains("after start")) }
    }

    @Test("the jailed mode of an executor refuses to run outside a jail", arguments: ["web_search", "image_generation", "file_search"])
    func insideOnlyInAJail(tool: String) async throws {
        let directory = try TestServices.temporaryDirectory("oneo-inside")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let failure = await #expect(throws: CommandFailed.self) {
            _ = try await ManagedProcess.run(TestServices.executable("oneo-tool"), [tool, "--inside", "jail"], logFile: directory + "/tool.log")
        }
        #expect(failure?.status == 78, "\(String(describing: failure))")
        #expect(failure?.output.contains("for the launcher's jails only") == true)
    }
}
