import NIOCore
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
@testable import Processor
import Testing

// Test data only: the key below is made up, shaped like an OpenAI key so the detector finds it.

/// A provider's reply is written by someone else too: what it says is bounded and cleaned before
/// it is stored, and nothing in it can crash the processor.
@Suite("provider replies")
struct ProviderReplyTests {
    @Test("Retry-After is seconds from 0 to an hour; a date, nan, infinity or garbage is ignored, never a trap", arguments: [
        ("5", Duration.seconds(5)), ("0.5", .milliseconds(500)), ("1e300", .seconds(3_600)), ("99999", .seconds(3_600)),
    ] as [(String, Duration)])
    func retryAfter(header: String, expected: Duration) {
        #expect(ChatCompletionsClient.retryAfter(header) == expected)
    }

    @Test("unusable Retry-After values give the usual backoff", arguments: ["nan", "inf", "-infinity", "-1", "Wed, 21 Oct 2015 07:28:00 GMT", "", String(repeating: "9", count: 400)])
    func retryAfterIgnored(header: String) {
        #expect(ChatCompletionsClient.retryAfter(header) == nil)
    }

    @Test("a provider's error message is stored short, without control characters or an echoed key")
    func errorMessage() {
        let body = #"{"error":{"message":"Incorrect API key provided: sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123\u0000\nsee docs"}}"#
        let message = ChatCompletionsClient.providerError(ByteBuffer(string: body))?.message
        #expect(message?.contains("sk-proj-ABCD") == false)
        #expect(message?.contains("[REDACTED:api_key]") == true)
        #expect(message?.unicodeScalars.contains { $0.value < 0x20 } == false)
        // A key that the 300-scalar cut would split is redacted first, whole.
        let straddling = #"{"error":{"message":""# + String(repeating: "x ", count: 140) + #"sk-proj-ABCDEFGHIJKLMNOPQRSTUVWX0123 ‮end"}}"#
        let cut = ChatCompletionsClient.providerError(ByteBuffer(string: straddling))?.message ?? ""
        #expect(!cut.contains("sk-proj") && !cut.contains("\u{202E}"), "\(cut)")
        let long = #"{"error":{"message":""# + String(repeating: "x", count: 5_000) + #""}}"#
        #expect((ChatCompletionsClient.providerError(ByteBuffer(string: long))?.message?.count ?? 0) <= 300)
    }

    @Test("JSON output with an escaped NUL parses to U+FFFD, which PostgreSQL can store")
    func nulInJSON() throws {
        #expect(try JSONValue.parse(Array(#"{"a":"x\u0000y"}"#.utf8)) == ["a": "x\u{FFFD}y"])
    }
}
