import Foundation
import OneoWire
import OneoTesting
import StackControl
import Testing

/// `serve` reads its tunables from a JSON file and ONEO_* variables, and refuses a bad one
/// before it starts anything, naming the key and where it came from.
@Suite("serve configuration")
struct ServeConfigurationTests {
    static func serve(_ arguments: [String], environment: [String: String], in directory: String) async throws -> CommandFailed? {
        do {
            _ = try await ManagedProcess.run(
                TestServices.executable("oneo-ai"), ["serve", "--data-dir", directory + "/data", "--port", "0"] + arguments,
                environment: environment, logFile: directory + "/serve.log"
            )
            return nil
        } catch let failure as CommandFailed {
            return failure
        }
    }

    @Test("an out-of-range file value, a malformed variable and a bad flag each stop serve with the key named")
    func badValuesAreNamed() async throws {
        let directory = try TestServices.temporaryDirectory("oneo-config")
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let file = directory + "/oneo.json"
        try Data(#"{"queue": {"lease_seconds": 5}}"#.utf8).write(to: URL(fileURLWithPath: file))
        let environment = ["DATABASE_URL": try TestServices.databaseURL(), "REDIS_URL": try TestServices.redisURL()]

        let fromFile = try #require(try await Self.serve(["--config", file], environment: environment, in: directory))
        #expect(fromFile.output.contains("queue.lease_seconds (\(file))"), "\(fromFile.output)")

        var variables = environment
        variables["ONEO_QUEUE_COMMIT_BATCH"] = "many"
        let fromVariable = try #require(try await Self.serve([], environment: variables, in: directory))
        #expect(fromVariable.output.contains("queue.commit_batch"), "\(fromVariable.output)")
        #expect(fromVariable.output.contains("not a whole number"), "\(fromVariable.output)")

        let fromFlag = try #require(try await Self.serve(["--processor-concurrency", "0"], environment: environment, in: directory))
        #expect(fromFlag.output.contains("processors.concurrency (--processor-concurrency)"), "\(fromFlag.output)")

        // The variable wins over the file: a good file value is overridden by a bad variable.
        try Data(#"{"queue": {"lease_seconds": 300}}"#.utf8).write(to: URL(fileURLWithPath: file))
        variables = environment
        variables["ONEO_QUEUE_LEASE_SECONDS"] = "3"
        let overridden = try #require(try await Self.serve(["--config", file], environment: variables, in: directory))
        #expect(overridden.output.contains("queue.lease_seconds (ONEO_QUEUE_LEASE_SECONDS)"), "\(overridden.output)")
    }
}
