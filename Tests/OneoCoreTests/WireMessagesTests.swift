import Foundation
import OneoWire
import OneoPrompt
import OneoStore
import OneoCore
import Testing

@Suite("Wire messages between supervisor, children and operators")
struct WireMessagesTests {
    func roundTrip<Message: Codable & Equatable>(_ message: Message) throws -> Message {
        let bytes = try Frame.encode(message)
        return try Frame.decode(Message.self, body: Array(bytes[4...]))
    }

    @Test("supervisor and child frames survive encoding", arguments: [
        SupervisorMessage.drain(timeoutMilliseconds: 2500, request: 1), .queue(request: 2),
        .processor(tenant: TenantID(7), name: "processor:acme", concurrency: 16, request: 3),
        .health(request: 9, nil),
        .health(request: 10, ProcessorHealth(
            state: "running", uptimeSeconds: 3.5, restarts: 1, jobsInFlight: 2, jobsCompleted: 40, lastHeartbeatSecondsAgo: 0.4,
            detail: nil, lastExit: "signal 9", providerCall: ProviderCall(reachable: true, code: nil, latencyMilliseconds: 120, ageMilliseconds: 900)
        )),
    ])
    func supervisorFrames(_ message: SupervisorMessage) throws {
        #expect(try self.roundTrip(message) == message)
    }

    @Test("child frames survive encoding", arguments: [
        ChildMessage.ready, .heartbeat(inFlight: 3, completed: 17), .need(tenants: [TenantID(1), TenantID(9)]), .tenantsChanged,
        .health(request: 4, tenant: TenantID(2)),
        .providerCall(ProviderCall(reachable: false, code: "provider_timeout", latencyMilliseconds: 60_000, ageMilliseconds: 10)),
        .accepted(request: 77),
    ])
    func childFrames(_ message: ChildMessage) throws {
        #expect(try self.roundTrip(message) == message)
    }

    @Test("an unknown frame type is malformed, not a crash")
    func unknownType() {
        #expect(throws: WireError.self) { try Frame.decode(SupervisorMessage.self, body: Array(#"{"type":"reboot"}"#.utf8)) }
        #expect(throws: WireError.self) { try Frame.decode(ChildMessage.self, body: Array(#"{"type":"heartbeat","in_flight":"many"}"#.utf8)) }
        #expect(throws: WireError.self) { try Frame.decode(SupervisorMessage.self, body: Array(#"{"type":"drain"}"#.utf8)) }
    }

    @Test("queue frames survive encoding, the cancel frame among them", arguments: [
        QueueMessage.cancel(job: JobID(5), attempt: 2),
    ])
    func queueFrames(_ message: QueueMessage) throws {
        #expect(try self.roundTrip(message) == message)
    }

    @Test("a processor's provider call is clamped and its code kept to a plain token")
    func providerCallClamped() throws {
        let body = #"{"type":"provider_call","call":{"reachable":true,"code":"x\u001b[2J<script>","latency_ms":-9,"age_ms":99999999999999}}"#
        guard case .providerCall(let call) = try Frame.decode(ChildMessage.self, body: Array(body.utf8)) else {
            Issue.record("not a provider call")
            return
        }
        #expect(call.code == "x2Jscript")
        #expect(call.latencyMilliseconds == 0)
        #expect(call.ageMilliseconds == 86_400_000 * 365)
    }

    @Test("a negative drain timeout or count is clamped to zero")
    func clamped() throws {
        #expect(try Frame.decode(SupervisorMessage.self, body: Array(#"{"type":"drain","timeout_ms":-5}"#.utf8)) == .drain(timeoutMilliseconds: 0, request: 0))
        #expect(try Frame.decode(ChildMessage.self, body: Array(#"{"type":"heartbeat","in_flight":-1}"#.utf8)) == .heartbeat(inFlight: 0, completed: 0))
    }

    @Test("status JSON has the documented keys")
    func statusShape() throws {
        let reply = ControlReply(children: [ChildStatus(
            name: "processor:acme", role: "processor", tenant: "acme", pid: 123, state: .crashLooping,
            uptimeSeconds: nil, restarts: 6, jobsInFlight: 0, lastError: "exit code 78", detail: nil
        )])
        let json = try #require(try JSONSerialization.jsonObject(with: JSONEncoder().encode(reply)) as? [String: Any])
        let child = try #require((json["children"] as? [[String: Any]])?.first)
        #expect(child["role"] as? String == "processor")
        #expect(child["tenant"] as? String == "acme")
        #expect(child["pid"] as? Int == 123)
        #expect(child["state"] as? String == "crash-looping")
        #expect(child["restarts"] as? Int == 6)
        #expect(child["last_error"] as? String == "exit code 78")
        #expect(try self.roundTrip(reply) == reply)
    }

    @Test("a control request over its size limit is refused before it is read")
    func controlLimit() {
        #expect(throws: WireError.self) { try Frame.bodyLength(header: [0, 1, 0, 1], limit: ControlRequest.maximumSize) }
    }
}
