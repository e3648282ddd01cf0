import Glibc
import OneoWire

/// The executor's only way out: it has no network of its own (its jail has an empty network
/// namespace and its seccomp policy refuses `socket`), so it asks the router, over the socket it
/// serves calls on, for a connection to a host; the router connects if the tool's egress allows
/// that host and hands the connected socket over (SCM_RIGHTS).
struct Egress {
    let socket: FrameSocket
    /// The call being served: the router answers requests of that call only.
    let call: String


    /// A connected socket to `host:port`, now ours, and the address it is connected to.
    func connect(host: String, port: Int) throws -> (descriptor: Int32, address: String) {
        try self.socket.send(EgressRequest(id: self.call, egress: .init(host: host, port: port)))
        let grant = try self.socket.receive(EgressGrant.self, limit: 4096)
        let descriptor = self.socket.takeDescriptor()
        guard grant.id == self.call, grant.error == nil, let descriptor, let address = grant.address else {
            if let descriptor { close(descriptor) }
            throw ToolFailure(message: grant.error.map { "no connection to \(host):\(port): \($0)" } ?? "no connection to \(host):\(port)")
        }
        return (descriptor, address)
    }
}
