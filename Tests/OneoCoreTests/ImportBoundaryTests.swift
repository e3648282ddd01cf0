import Foundation
import Testing

/// The never-list check (scripts/check-imports.sh) that CI runs before the build: it passes on
/// this tree and fails on a planted violation, so a green run means something.
@Suite("import boundaries")
struct ImportBoundaryTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func check(_ root: String?) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/bin/bash")
        process.arguments = [Self.repository.path + "/scripts/check-imports.sh"] + (root.map { [$0] } ?? [])
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let output = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: output, as: UTF8.self))
    }

    @Test("this tree keeps the never-list")
    func treeIsClean() throws {
        let result = try Self.check(nil)
        #expect(result.status == 0, "\(result.output)")
    }

    @Test("a processor importing the store, a supervisor importing the prompt, an executor importing the processor: each fails", arguments: [
        ("Processor", "import OneoStore"),
        ("Supervisor", "public import OneoPrompt"),
        ("Tools/WebSearch", "@testable import Processor"),
        ("OneoWire", "import PostgresNIO"),
    ])
    func plantedViolationFails(folder: String, line: String) throws {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("oneo-imports-\(UInt32.random(in: 0 ... .max))")
        defer { try? FileManager.default.removeItem(at: root) }
        let directory = root.appendingPathComponent("Sources/\(folder)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        try Data("import Foundation\n\(line)\n".utf8).write(to: directory.appendingPathComponent("Planted.swift"))
        let result = try Self.check(root.path)
        #expect(result.status == 1)
        #expect(result.output.contains("Planted.swift:2"), "\(result.output)")
    }
}
