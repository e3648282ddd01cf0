import Glibc
import NIOPosix
public import OneoWire

/// The processor's end of its connection to the supervisor's tool router: one call at a time
/// (the router runs a tenant's calls in order), each a blocking send and receive on the thread
/// pool, never on the cooperative pool. An answer that came too late for its call is skipped by
/// its id; a closed connection fails the call with an error the model reads, and the supervisor
/// is told (`lost`) so that it hands a new one over.
public actor ToolClient {
    private var socket: FrameSocket?
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []
    private var nextID: UInt64 = 0
    private let lost: @Sendable () -> Void

    public init(lost: @escaping @Sendable () -> Void = {}) {
        self.lost = lost
    }

    /// Takes a connection the supervisor handed over, replacing any older one.
    public func connect(_ descriptor: Int32) {
        let socket = FrameSocket(descriptor: descriptor, acceptsDescriptors: false)
        // The router answers within the longest tool's timeout (images: 120 s) and its margin,
        // plus the wait for an executor (30 s): the processor waits longer than that, so a call
        // the router is still running (and will have billed) is never given up on here.
        socket.setReceiveTimeout(seconds: 180)
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
        guard let socket = self.socket else {
            // Asked again with every call while there is none (the supervisor throttles).
            self.lost()
            return ToolResponse(id: id, error: "tools are not available right now")
        }
        let frame = ToolCallFrame(id: id, job: job, attempt: attempt, tool: tool, arguments: arguments, ticket: ticket)
        do {
            return try await NIOThreadPool.singleton.runIfActive { () throws -> ToolResponse in
                try socket.send(frame)
                // Answers to earlier calls that timed out here arrive first: skipped.
                for _ in 0..<64 {
                    let response = try socket.receive(ToolResponse.self)
                    if response.id == id { return response }
                }
                throw WireError(.malformed, detail: "no answer to this call among 64")
            }
        } catch let error as WireError where error.code == .io(EAGAIN) || error.code == .io(EWOULDBLOCK) {
            // Timed out: the connection stays; its late answer will be skipped.
            return ToolResponse(id: id, error: "the tool call took too long")
        } catch {
            self.socket = nil
            self.lost()
            return ToolResponse(id: id, error: "the tool call could not be completed (\(error))")
        }
    }
}
