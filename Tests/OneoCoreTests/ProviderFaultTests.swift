import AsyncHTTPClient
import Foundation
import Hummingbird
import Logging
import NIOCore
import OneoPrompt
import OneoWire
import Processor
import ProviderSimulator
import StackControl
import Testing

/// The provider client against every fault the simulator acts out, over real HTTP: each ends in
/// a stable code with the right retry class, and no header or body crashes anything.
@Suite("provider faults, classified")
struct ProviderFaultTests {
    @Test("fault markers parse; words that name no fault are ignored")
    func markers() {
        let fault = SimulatedFault(words: "429 retry-after=2 times=1")
        #expect(fault == SimulatedFault(kind: .rateLimited, times: 1, retryAfter: "2"))
        #expect(SimulatedFault(words: "slow ms=250")?.milliseconds == 250)
        #expect(SimulatedFault(words: "teapot") == nil)
        #expect(SimulatedFault(words: "") == nil)
    }

    /// Runs the simulator in this process on a kernel-picked port for `body`.
    static func withSimulator(faultRate: Double = 0, fault: SimulatedFault? = nil, _ body: @Sendable (String) async throws -> Void) async throws {
        let (ports, port) = AsyncStream<Int>.makeStream()
        let app = ProviderSimulator.application(.init(port: 0, faultRate: faultRate, fault: fault) { port.yield($0) }, logger: Logger(label: "sim"))
        try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await app.runService(gracefulShutdownSignals: []) }
            var iterator = ports.makeAsyncIterator()
            let listening = try #require(await iterator.next())
            try await body("http://127.0.0.1:\(listening)/v1")
            group.cancelAll()
        }
    }

    static func call(_ base: String, prompt: String, timeout: TimeAmount = .seconds(5)) async -> ProviderOutcome {
        let client = ChatCompletionsClient(baseURL: base, key: nil, http: .shared, timeout: timeout)
        let config = try! AIFieldConfig(validating: ["prompt": "x"], stored: true)
        return await client.complete(ChatCompletionsClient.request(config: config, model: "gpt-4o-mini", prompt: prompt, capabilities: ModelCatalog.builtIn.model("gpt-4o-mini")))
    }

    static func failure(_ outcome: ProviderOutcome) -> ProviderFailure? {
        if case .failure(let failure) = outcome { return failure }
        return nil
    }

    @Test("each fault: its code and retry class; bad Retry-After values are ignored")
    func faults() async throws {
        try await Self.withSimulator { base in
            let cases: [(String, String, ProviderFailure.Kind)] = [
                ("429 retry-after=3", "provider_http_429", .retryable(after: .seconds(3))),
                ("429 retry-after=nan", "provider_http_429", .retryable(after: nil)),
                // An absurd one is held to an hour (never a trap converting it).
                ("503 retry-after=1e300", "provider_http_503", .retryable(after: .seconds(3_600))),
                ("503 retry-after=-4", "provider_http_503", .retryable(after: nil)),
                ("500", "provider_http_500", .retryable(after: nil)),
                ("502", "provider_http_502", .retryable(after: nil)),
                ("400", "provider_http_400", .permanent),
                ("401", "provider_http_401", .permanent),
                ("quota", "insufficient_quota", .permanent),
                ("malformed", "provider_malformed", .retryable(after: nil)),
                ("no-usage", "provider_no_usage", .permanent),
                ("drop", "provider_connection_lost", .retryable(after: nil)),
                ("truncated", "output_truncated", .permanent),
            ]
            for (words, code, kind) in cases {
                let failure = Self.failure(await Self.call(base, prompt: "hello [sim-fault: \(words)]"))
                #expect(failure?.code == code, "\(words): \(failure?.message ?? "")")
                #expect(failure?.kind == kind, "\(words)")
            }
            let slow = Self.failure(await Self.call(base, prompt: "hello [sim-fault: slow ms=5000]", timeout: .milliseconds(300)))
            #expect(slow?.code == "provider_timeout")
            #expect(slow?.kind == .retryable(after: nil))
            // times=1: the first call fails, the next one with the same messages is answered.
            #expect(Self.failure(await Self.call(base, prompt: "again [sim-fault: 500 times=1]")) != nil)
            #expect(Self.failure(await Self.call(base, prompt: "again [sim-fault: 500 times=1]")) == nil)
        }
    }

    @Test("a cancelled call ends at once as 'cancelled', permanent")
    func cancelled() async throws {
        try await Self.withSimulator { base in
            let task = Task { await Self.call(base, prompt: "wait [sim-fault: slow ms=30000]", timeout: .seconds(60)) }
            // Cancelled once the simulator holds the call (its request log shows it).
            let log = JSONClient(baseURL: base.replacingOccurrences(of: "/v1", with: ""))
            try await waitUntil("the simulator to hold the call", timeout: .seconds(10), interval: .milliseconds(20)) {
                try await log.get("/sim/requests").body.arrayValue?.isEmpty == false
            }
            let started = ContinuousClock.now
            task.cancel()
            let failure = Self.failure(await task.value)
            #expect(failure?.code == "cancelled")
            #expect(failure?.kind == .permanent)
            #expect(ContinuousClock.now - started < .seconds(1))
        }
    }

    @Test("a provider message that quotes the request keeps none of it")
    func requestEcho() {
        let prompt = "Summarize <data>Jane Doe, 42 Wallaby Way, Sydney</data> for the sales team"
        let message = "Invalid value for 'messages[1].content': 'Jane Doe, 42 Wallaby Way, Sydney' is not allowed"
        let stripped = RequestEcho.strip(message, sent: [prompt])
        #expect(!stripped.contains("Wallaby") && !stripped.contains("Jane Doe"))
        #expect(stripped.hasPrefix("Invalid value for 'messages[1].content': '"))
        #expect(stripped.hasSuffix("' is not allowed"))
        // A message with nothing of the request stays as it is; short texts too.
        #expect(RequestEcho.strip("Rate limit reached for gpt-4o-mini", sent: [prompt]) == "Rate limit reached for gpt-4o-mini")
        #expect(RequestEcho.strip("Jane", sent: [prompt]) == "Jane")
    }

    @Test("--fault-rate fails that share of all requests with --fault")
    func faultRate() async throws {
        try await Self.withSimulator(faultRate: 1, fault: SimulatedFault(kind: .unavailable)) { base in
            for index in 0..<5 { #expect(Self.failure(await Self.call(base, prompt: "request \(index)"))?.code == "provider_http_503") }
        }
        try await Self.withSimulator(faultRate: 0, fault: SimulatedFault(kind: .unavailable)) { base in
            #expect(Self.failure(await Self.call(base, prompt: "request")) == nil)
        }
    }
}
