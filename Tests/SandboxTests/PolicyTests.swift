import OneoSandbox
import Testing

@Suite("sandbox policy")
struct PolicyTests {
    @Test("the code interpreter's policy parses and builds")
    func builds() throws {
        let policy = try SandboxPolicy(parsing: String(decoding: try SandboxFiles.policy("code_interpreter"), as: UTF8.self))
        #expect(policy.tool == "code_interpreter")
        let program = try SeccompProgram(policy: policy)
        #expect(program.instructionCount > 10)
    }
}
