import CProcess
import Dispatch
import Foundation
import NIOPosix
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// A processor's end of a socketpair to the queue manager, as the supervisor hands it to the
/// queue manager: the tenant comes from the supervisor, never from the processor.
public struct ProcessorLink: Sendable {
    public let descriptor: Int32
    public let tenant: TenantID
    public let name: String
    public let concurrency: Int

    public init(descriptor: Int32, tenant: TenantID, name: String, concurrency: Int) {
        self.descriptor = descriptor
        self.tenant = tenant
        self.name = name
        self.concurrency = concurrency
    }
}

/// A child's side of its socket to the supervisor, the one implementation every child of ours
/// uses: the bootstrap frame, then the supervisor's frames on a thread of its own, and our
/// ready, heartbeat and request frames back, written in order by a second thread whose writes
/// wait for the socket (a heartbeat or provider call still waiting is replaced by the newer one;
/// nothing else is dropped). The child dies with the supervisor: by its
/// parent-death signal, and by its socket closing.
public final class SupervisorLink: Sendable {
    public let bootstrap: ChildBootstrap
    /// A processor's connections to the queue manager, as the supervisor hands them over.
    public let queueConnections: AsyncStream<Int32>
    /// The queue manager's connections to processors.
    public let processorLinks: AsyncStream<ProcessorLink>
    /// A processor's connections to the supervisor's tool router (a new one replaces the old).
    public let toolConnections: AsyncStream<Int32>
    private let channel: FrameSocket
    private let outbox = ChildOutbox()
    private let drainRequest = Mutex<(@Sendable (Duration) -> Void)?>(nil)
    /// The API's questions awaiting the supervisor's answer, by request id.
    private let questions = Mutex<(next: UInt32, waiting: [UInt32: CheckedContinuation<ProcessorHealth?, any Error>])>((1, [:]))

    /// Arms the parent-death signal, reads the bootstrap, and checks that our parent is still the
    /// supervisor that wrote it: a child orphaned before the signal was armed exits here.
    public static func connect(role: String) async throws -> SupervisorLink {
        // SIGKILL: when the supervisor is gone nobody can use our work, and our leases are
        // released by the next supervisor's processors.
        _ = oneo_set_parent_death_signal(SIGKILL)
        // No exec of ours, or of a compromised child, gains privileges (setuid binaries).
        _ = oneo_set_no_new_privs()
        let channel = FrameSocket(descriptor: FrameSocket.childDescriptor)
        let bootstrap = try await NIOThreadPool.singleton.runIfActive {
            try channel.receive(ChildBootstrap.self)
        }
        guard getppid() == bootstrap.supervisor else {
            Self.exit(role, "the supervisor (pid \(bootstrap.supervisor)) is gone", code: 0)
        }
        return SupervisorLink(bootstrap: bootstrap, channel: channel, role: role)
    }

    private init(bootstrap: ChildBootstrap, channel: FrameSocket, role: String) {
        self.bootstrap = bootstrap
        self.channel = channel
        let (queueConnections, queueConnection) = AsyncStream<Int32>.makeStream()
        self.queueConnections = queueConnections
        let (processorLinks, processorLink) = AsyncStream<ProcessorLink>.makeStream()
        self.processorLinks = processorLinks
        let (toolConnections, toolConnection) = AsyncStream<Int32>.makeStream()
        self.toolConnections = toolConnections
        let reader = Thread { [self] in
            while true {
                let message: SupervisorMessage
                do throws(WireError) {
                    message = try channel.receive(SupervisorMessage.self, limit: 4096)
                } catch {
                    if error.code == .closed { Self.exit(role, "supervisor gone (its socket closed)", code: 0) }
                    Self.exit(role, "unreadable frame from the supervisor (\(error))", code: 70)
                }
                switch message {
                case .queue(let request):
                    guard let descriptor = channel.takeDescriptor() else { Self.exit(role, "a queue frame came without its socket", code: 70) }
                    queueConnection.yield(descriptor)
                    self.tell(.accepted(request: request))
                case .tools(let request):
                    guard let descriptor = channel.takeDescriptor() else { Self.exit(role, "a tools frame came without its socket", code: 70) }
                    toolConnection.yield(descriptor)
                    self.tell(.accepted(request: request))
                case .processor(let tenant, let name, let concurrency, let request):
                    guard let descriptor = channel.takeDescriptor() else { Self.exit(role, "a processor frame came without its socket", code: 70) }
                    processorLink.yield(.init(descriptor: descriptor, tenant: tenant, name: name, concurrency: concurrency))
                    self.tell(.accepted(request: request))
                case .drain(let milliseconds, let request):
                    self.tell(.accepted(request: request))
                    let handler = self.drainRequest.withLock { $0 } ?? { _ in Self.exit(role, "asked to drain", code: 0) }
                    handler(.milliseconds(milliseconds))
                case .health(let request, let health):
                    // An answer nobody waits for any more (timed out) is dropped.
                    self.questions.withLock { $0.waiting.removeValue(forKey: request) }?.resume(returning: health)
                }
            }
        }
        reader.name = "oneo-supervisor-link"
        reader.start()
        let outbox = self.outbox
        let writer = Thread {
            while true {
                for message in outbox.takeAll() {
                    do throws(WireError) {
                        try channel.send(message)
                    } catch {
                        Self.exit(role, "cannot write to the supervisor (\(error))", code: 0)
                    }
                }
            }
        }
        writer.name = "oneo-supervisor-link-writer"
        writer.start()
    }

    /// What to do when the supervisor asks us to drain (default: exit at once).
    public func onDrain(_ handler: @escaping @Sendable (Duration) -> Void) {
        self.drainRequest.withLock { $0 = handler }
    }

    /// Asks the supervisor how `tenant`'s processor is (the API's `worker_health`): the answer
    /// carries our request id, so answers to earlier questions that timed out match nothing.
    /// Throws `WireError(.closed)` when no answer came within `timeout`.
    public func health(of tenant: TenantID, timeout: Duration) async throws -> ProcessorHealth? {
        let request = self.questions.withLock { state -> UInt32 in
            let id = state.next
            state.next = state.next == .max ? 1 : state.next + 1
            return id
        }
        let timer = Task {
            try await Task.sleep(for: timeout)
            self.questions.withLock { $0.waiting.removeValue(forKey: request) }?.resume(throwing: WireError(.closed, detail: "the supervisor did not answer within \(timeout)"))
        }
        defer { timer.cancel() }
        return try await withCheckedThrowingContinuation { continuation in
            let tooMany = self.questions.withLock { state -> Bool in
                guard state.waiting.count < 64 else { return true }
                state.waiting[request] = continuation
                return false
            }
            if tooMany {
                continuation.resume(throwing: WireError(.closed, detail: "too many questions to the supervisor at once"))
                return
            }
            guard self.outbox.put(ChildMessage.health(request: request, tenant: tenant)) else {
                self.questions.withLock { $0.waiting.removeValue(forKey: request) }?.resume(throwing: WireError(.closed, detail: "the supervisor is not reading"))
                return
            }
        }
    }

    public func ready() {
        self.outbox.put(ChildMessage.ready)
    }

    /// Queues a frame for the supervisor; never blocks the caller.
    public func tell(_ message: ChildMessage) {
        self.outbox.put(message)
    }

    /// Sends a heartbeat every bootstrap interval until cancelled. Never blocks: a supervisor
    /// too busy to read finds one heartbeat waiting, the newest.
    /// - Parameter providerCall: a processor's newest provider call with its sequence number;
    ///   sent with the heartbeat only when there is a newer one than last sent.
    public func heartbeats(
        _ activity: @escaping @Sendable () -> (inFlight: Int, completed: Int),
        providerCall: @escaping @Sendable () -> (sequence: Int, call: ProviderCall)? = { nil }
    ) async {
        let interval = Duration.tunable(milliseconds: self.bootstrap.tunables.supervision.heartbeatIntervalMilliseconds)
        var lastSent = 0
        while !Task.isCancelled {
            let (inFlight, completed) = activity()
            self.outbox.put(ChildMessage.heartbeat(inFlight: inFlight, completed: completed))
            if let newest = providerCall(), newest.sequence != lastSent {
                lastSent = newest.sequence
                self.outbox.put(ChildMessage.providerCall(newest.call))
            }
            try? await Task.sleep(for: interval)
        }
    }

    public static func exit(_ role: String, _ reason: String, code: Int32) -> Never {
        FileHandle.standardError.write(Data("oneo-ai \(role): \(reason); exiting\n".utf8))
        Glibc.exit(code)
    }
}

/// Frames for the supervisor, in order, for the writer thread. Heartbeats and provider calls are
/// state, not events: a newer one replaces the one still waiting; so do `tenants_changed` and
/// `queue_lost`, which say the same thing twice. Past 1,024 waiting frames (a supervisor that
/// stopped reading) only answers to the supervisor's own requests and `ready` still queue; the
/// rest is refused (`need` is repeated by the queue manager's poll; a health question fails at
/// once).
final class ChildOutbox: Sendable {
    private let frames = Mutex<[ChildMessage]>([])
    private let ready = DispatchSemaphore(value: 0)
    static let capacity = 1_024

    @discardableResult
    func put(_ message: ChildMessage) -> Bool {
        let (queued, signal) = self.frames.withLock { frames -> (Bool, Bool) in
            func replace(_ matches: (ChildMessage) -> Bool) -> Bool {
                guard let index = frames.lastIndex(where: matches) else { return false }
                frames[index] = message
                return true
            }
            switch message {
            case .heartbeat: if replace({ if case .heartbeat = $0 { true } else { false } }) { return (true, false) }
            case .providerCall: if replace({ if case .providerCall = $0 { true } else { false } }) { return (true, false) }
            case .tenantsChanged, .queueLost, .toolsLost: if replace({ $0 == message }) { return (true, false) }
            case .accepted, .ready: break
            default: if frames.count >= Self.capacity { return (false, false) }
            }
            frames.append(message)
            return (true, true)
        }
        if signal { self.ready.signal() }
        return queued
    }

    /// Waits for frames and takes every one waiting.
    func takeAll() -> [ChildMessage] {
        while true {
            self.ready.wait()
            let taken = self.frames.withLock { frames -> [ChildMessage] in
                defer { frames.removeAll(keepingCapacity: true) }
                return frames
            }
            if !taken.isEmpty { return taken }
        }
    }
}
