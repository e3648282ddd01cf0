import NIOPosix
public import OneoWire

/// The processor's end of its connection to the supervisor's tool router: one call at a time
/// (the router runs a tenant's calls in order), each a blocking send and receive on the thread
/// pool, never on the cooperative pool. A failed connection fails the call with an error the
/// model reads; the supervisor hands a new one over.
public actor ToolClient {
    private var socket: FrameSocket?
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var nextID: UInt64 = 0

    public init() {}

    /// Takes a connection the supervisor handed over, replacing any older one.
    public func connect(_ descriptor: Int32) {
        let socket = FrameSocket(descriptor: descriptor)
        // The router answers within the executor's timeout plus the calls queued before ours.
        socket.setReceiveTimeout(seconds: 120)
        self.socket = socket
    }

    public var isConnected: Bool { self.socket != nil }

    public func call(job: JobID, attempt: Int, tool: String, arguments: JSONValue, ticket: ToolTicket) async -> ToolResponse {
        while self.busy { await withCheckedContinuation { self.waiting.append($0) } }
        self.busy = true
        defer {
            self.busy = false
            if !self.waiting.isEmpty { self.waiting.removeFirst().resume() }
        }
        self.nextID += 1
        let id = "\(self.nextID)"
        guard let socket = self.socket else { return ToolResponse(id: id, error: "tools are not available right now") }
        let frame = ToolCallFrame(id: id, job: job, attempt: attempt, tool: tool, arguments: arguments, ticket: ticket)
        do {
            let response = try await NIOThreadPool.singleton.runIfActive { () throws -> ToolResponse in
                try socket.send(frame)
                return try socket.receive(ToolResponse.self)
            }
            guard response.id == id else {
                self.socket = nil
                return ToolResponse(id: id, error: "the tool router answered another call; the connection was dropped")
            }
            return response
        } catch {
            self.socket = nil
            return ToolResponse(id: id, error: "the tool call could not be completed (\(error))")
        }
    }
}
