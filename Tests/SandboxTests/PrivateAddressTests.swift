import CProcess
import Glibc
import Testing

/// What the router refuses to connect a tool to when the address came from a tenant's provider
/// name: this machine and private networks, also when they hide inside IPv6.
@Suite("private addresses")
struct PrivateAddressTests {
    static func isPrivate(_ text: String) -> Bool? {
        if text.contains(":") {
            var address = sockaddr_in6()
            address.sin6_family = sa_family_t(AF_INET6)
            guard inet_pton(AF_INET6, text, &address.sin6_addr) == 1 else { return nil }
            return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { oneo_address_is_private($0) != 0 } }
        }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        guard inet_pton(AF_INET, text, &address.sin_addr) == 1 else { return nil }
        return withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { oneo_address_is_private($0) != 0 } }
    }

    @Test("private and local addresses are refused, public ones are not", arguments: [
        ("127.0.0.1", true), ("10.1.2.3", true), ("172.16.0.1", true), ("172.31.255.255", true), ("192.168.1.1", true),
        ("169.254.169.254", true), ("100.64.0.1", true), ("0.0.0.0", true), ("224.0.0.1", true), ("255.255.255.255", true),
        ("192.0.0.8", true), ("198.18.0.1", true),
        ("::1", true), ("::", true), ("fe80::1", true), ("fd00::1", true), ("ff02::1", true),
        ("::ffff:127.0.0.1", true), ("::ffff:10.0.0.1", true), ("64:ff9b::a9fe:a9fe", true), ("2002:7f00:1::1", true),
        ("64:ff9b:1::1", true), ("2001:0:4136:e378::1", true),
        ("8.8.8.8", false), ("172.32.0.1", false), ("100.128.0.1", false), ("198.20.0.1", false),
        ("2606:4700::1111", false), ("::ffff:8.8.8.8", false), ("64:ff9b::808:808", false), ("2002:808:808::1", false),
    ])
    func classification(address: String, expected: Bool) throws {
        #expect(try #require(Self.isPrivate(address)) == expected, "\(address)")
    }
}
