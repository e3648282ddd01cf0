@testable import OneoWire
@testable import QueueManager
import Testing

/// What the queue manager makes of the tool calls a processor reports: names and errors it can
/// store, fees only for calls that ran and were granted, never crowded out by refused ones.
@Suite("tool call pricing")
struct ToolPricingTests {
    let models = ModelCatalog.builtIn

    @Test("a name or error with a NUL or control characters is stored as plain text; an unknown tool as unknown")
    func sanitized() {
        let calls = [
            ToolCallRecord(tool: "code\u{0}_interpreter", milliseconds: -5, resultBytes: 10, error: nil),
            ToolCallRecord(tool: "code_interpreter", milliseconds: 12, resultBytes: 10, error: "bad\u{0}\u{1B}[31m thing"),
        ]
        let priced = QueueManagerService.pricedToolCalls(calls, granted: ["code_interpreter"], self.models)
        #expect(priced[0].tool == "unknown")
        #expect(priced[0].milliseconds == 0)
        #expect(priced[0].costMicros == 0)
        #expect(priced[1].error == "bad[31m thing")
        #expect(priced[1].costMicros == 0, "a call that failed is not charged")
    }

    @Test("fees: only calls that ran and were granted; refused calls cannot push real ones past the loop's bound")
    func fees() {
        let fee = self.models.tools["code_interpreter"]?.perCall?.rawValue ?? 0
        #expect(fee > 0)
        let refused = (0..<40).map { _ in ToolCallRecord(tool: "code_interpreter", milliseconds: 0, resultBytes: 0, error: "not run") }
        let ran = (0..<5).map { _ in ToolCallRecord(tool: "code_interpreter", milliseconds: 3, resultBytes: 9, error: nil) }
        let other = [ToolCallRecord(tool: "web_search", milliseconds: 3, resultBytes: 9, error: nil)]
        #expect(QueueManagerService.toolFees(refused + ran + other, granted: ["code_interpreter"], self.models).rawValue == 5 * fee)
    }
}
