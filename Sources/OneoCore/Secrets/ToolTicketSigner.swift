public import OneoWire
import Crypto
public import Foundation

/// Signs and checks tool tickets with a key the supervisor makes at start and gives the queue
/// manager alone: a processor can carry a ticket, not make one.
public struct ToolTicketSigner: Sendable, CustomStringConvertible, CustomDebugStringConvertible, CustomReflectable {
    private let key: [UInt8]

    // Printed inside a service's description (ServiceLifecycle logs those at debug): never the key.
    public var description: String { "ToolTicketSigner(key withheld)" }
    public var debugDescription: String { self.description }
    public var customMirror: Mirror { Mirror(self, children: [:]) }

    public init(key: [UInt8]) {
        self.key = key
    }

    /// A fresh random key (32 bytes).
    public static func freshKey() -> [UInt8] {
        SymmetricKey(size: .bits256).withUnsafeBytes { Array($0) }
    }

    public func ticket(tenant: TenantID, job: JobID, attempt: Int, tools: [String], validFor: Duration) -> ToolTicket {
        let expires = Int64(Date().timeIntervalSince1970 * 1000) + Int64(validFor.components.seconds * 1000)
        let sorted = tools.sorted()
        return ToolTicket(tools: sorted, expires: expires, mac: self.mac(ToolTicket.signedText(tenant: tenant, job: job, attempt: attempt, tools: sorted, expires: expires)))
    }

    /// Whether `ticket` was made by us for this tenant's attempt, is unexpired, and grants `tool`.
    public func allows(_ ticket: ToolTicket, tenant: TenantID, job: JobID, attempt: Int, tool: String, now: Date = Date()) -> Bool {
        guard ticket.tools.contains(tool), Int64(now.timeIntervalSince1970 * 1000) < ticket.expires, ticket.mac.utf8.count == 64 else { return false }
        let expected = self.mac(ToolTicket.signedText(tenant: tenant, job: job, attempt: attempt, tools: ticket.tools, expires: ticket.expires))
        // Constant time: every byte is compared.
        return zip(expected.utf8, ticket.mac.utf8).reduce(UInt8(0)) { $0 | ($1.0 ^ $1.1) } == 0
    }

    private func mac(_ text: String) -> String {
        HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: SymmetricKey(data: self.key)).map { String(format: "%02x", $0) }.joined()
    }
}
