import OneoWire
@testable import Supervisor
import Testing

/// A child's frames reach the supervisor through a bounded mailbox: one delivery at a time,
/// heartbeats coalesced, a flood dropped past the bound.
@Suite("frame mailbox")
struct FrameMailboxTests {
    @Test("the first frame starts a delivery; later ones join it; heartbeats coalesce to the newest")
    func coalescing() {
        let mailbox = FrameMailbox()
        #expect(mailbox.offer(.ready) == true)
        #expect(mailbox.offer(.heartbeat(inFlight: 1, completed: 0)) == false)
        #expect(mailbox.offer(.heartbeat(inFlight: 2, completed: 5)) == false)
        #expect(mailbox.offer(.tenantsChanged) == false)
        let first = mailbox.take()
        #expect(first.messages == [.ready, .heartbeat(inFlight: 2, completed: 5), .tenantsChanged])
        #expect(first.dropped == 0)
        // Nothing left: the delivery ends, and the next frame starts a new one.
        #expect(mailbox.take().messages.isEmpty)
        #expect(mailbox.offer(.heartbeat(inFlight: 0, completed: 6)) == true)
    }

    @Test("requests for processors merge into one set of tenants, however many frames")
    func needsMerge() {
        let mailbox = FrameMailbox()
        for index in 0..<1_000 { _ = mailbox.offer(.need(tenants: [TenantID(Int64(index % 300 + 1))])) }
        let taken = mailbox.take()
        #expect(taken.messages.count == 1)
        guard case .need(let tenants)? = taken.messages.first else {
            Issue.record("no need frame")
            return
        }
        #expect(Set(tenants).count == 300)
        #expect(taken.dropped == 0)
    }

    @Test("a flood is bounded: past the capacity frames are dropped and counted")
    func flood() {
        let mailbox = FrameMailbox()
        for _ in 0..<(FrameMailbox.capacity + 50) { _ = mailbox.offer(.tenantsChanged) }
        _ = mailbox.offer(nil)
        let taken = mailbox.take()
        #expect(taken.messages.count == FrameMailbox.capacity + 1, "a broken frame is never dropped")
        #expect(taken.messages.last == .some(nil))
        #expect(taken.dropped == 50)
    }

    @Test("answers to the supervisor's requests are never dropped by the flood bound")
    func answersPassTheBound() {
        let mailbox = FrameMailbox()
        for _ in 0..<(FrameMailbox.capacity + 10) { _ = mailbox.offer(.tenantsChanged) }
        for request in 0..<200 { _ = mailbox.offer(.accepted(request: UInt32(request))) }
        let taken = mailbox.take()
        let answers = taken.messages.filter { if case .accepted = $0 { true } else { false } }
        #expect(answers.count == 200)
        #expect(taken.dropped == 10)
    }

    @Test("a flood of broken frames keeps one: it is what ends the reading of that child")
    func oneBrokenFrame() {
        let mailbox = FrameMailbox()
        for _ in 0..<10_000 { _ = mailbox.offer(nil) }
        let taken = mailbox.take()
        #expect(taken.messages.count == 1 && taken.messages.first == .some(nil))
        #expect(taken.dropped == 9_999)
    }
}
