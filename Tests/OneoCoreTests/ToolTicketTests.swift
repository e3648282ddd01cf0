import Foundation
import OneoCore
import OneoWire
import Testing

/// Tool tickets: what the queue manager signs is what the supervisor accepts, and nothing a
/// processor could change or carry to another tenant's attempt.
@Suite("tool tickets")
struct ToolTicketTests {
    let signer = ToolTicketSigner(key: ToolTicketSigner.freshKey())

    @Test("a ticket grants its tools to its tenant's attempt, and nothing else")
    func grants() {
        let ticket = self.signer.ticket(tenant: TenantID(7), job: JobID(42), attempt: 2, tools: ["code_interpreter"], validFor: .seconds(60))
        #expect(self.signer.allows(ticket, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        #expect(!self.signer.allows(ticket, tenant: TenantID(8), job: JobID(42), attempt: 2, tool: "code_interpreter"), "another tenant's socket")
        #expect(!self.signer.allows(ticket, tenant: TenantID(7), job: JobID(43), attempt: 2, tool: "code_interpreter"), "another job")
        #expect(!self.signer.allows(ticket, tenant: TenantID(7), job: JobID(42), attempt: 3, tool: "code_interpreter"), "another attempt")
        #expect(!self.signer.allows(ticket, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "web_search"), "a tool not granted")
    }

    @Test("a changed ticket, another key's ticket and an expired one are refused")
    func forgeries() {
        let ticket = self.signer.ticket(tenant: TenantID(7), job: JobID(42), attempt: 2, tools: ["code_interpreter"], validFor: .seconds(60))
        var widened = ticket
        widened.tools = ["code_interpreter", "web_search"]
        #expect(!self.signer.allows(widened, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "web_search"))
        #expect(!self.signer.allows(widened, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        var extended = ticket
        extended.expires += 3_600_000
        #expect(!self.signer.allows(extended, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        var garbled = ticket
        garbled.mac = String(repeating: "0", count: 64)
        #expect(!self.signer.allows(garbled, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        garbled.mac = "short"
        #expect(!self.signer.allows(garbled, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        let stranger = ToolTicketSigner(key: ToolTicketSigner.freshKey()).ticket(tenant: TenantID(7), job: JobID(42), attempt: 2, tools: ["code_interpreter"], validFor: .seconds(60))
        #expect(!self.signer.allows(stranger, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter"))
        #expect(!self.signer.allows(ticket, tenant: TenantID(7), job: JobID(42), attempt: 2, tool: "code_interpreter", now: Date().addingTimeInterval(120)), "expired")
    }
}
