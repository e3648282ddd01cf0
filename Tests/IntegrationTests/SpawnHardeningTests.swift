import Foundation
import StackControl
import Testing
#if canImport(Glibc)
import Glibc
#endif

/// The one spawn function hands a child nothing but what it names: a descriptor the parent holds
/// without close-on-exec (as swift-nio's epoll instances are) does not cross, and the child has
/// a session of its own.
@Suite("spawn hardening")
struct SpawnHardeningTests {
    @Test("a child holds only descriptors 0 to 2 and leads its own session")
    func descriptorsAndSession() async throws {
        // A descriptor without O_CLOEXEC, as an event loop's epoll instance is.
        let leaked = open("/dev/null", O_RDONLY)
        try #require(leaked > 3)
        defer { close(leaked) }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-spawn-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = try await ManagedProcess.run(
            "/bin/sh", ["-c", #"ls -1 /proc/$$/fd; echo "pid $$"; echo "session $(cut -d' ' -f6 /proc/$$/stat)""#],
            logFile: directory + "/spawn.log"
        )
        // The shell's descriptors, listed by `ls` from outside it (no pipe open meanwhile): the
        // lines that are only a number.
        let descriptors = output.split(separator: "\n").filter { !$0.isEmpty && $0.allSatisfy(\.isNumber) }.map(String.init)
        #expect(!descriptors.contains("\(leaked)"), "the parent's descriptor \(leaked) reached the child: \(descriptors)")
        #expect(descriptors.allSatisfy { ["0", "1", "2"].contains($0) }, "\(descriptors)")
        let pid = output.split(separator: "\n").first { $0.hasPrefix("pid ") }?.dropFirst(4)
        let session = output.split(separator: "\n").first { $0.hasPrefix("session ") }?.dropFirst(8)
        #expect(pid != nil && pid == session, "the child leads its own session: \(output)")
    }
}
