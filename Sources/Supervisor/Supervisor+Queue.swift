import CProcess
import Foundation
import Logging
import OneoWire
import OneoStore
import OneoCore
#if canImport(Glibc)
import Glibc
#endif

extension Supervisor {
    /// The queue manager's child, when it is running and ready.
    var readyQueueManager: SupervisedChild? {
        guard let child = self.children[Self.queueManagerName], child.pid != nil, child.lifecycle.state == .running else { return nil }
        return child
    }

    static let queueManagerName = "qmgr"

    /// Connects a ready processor to the queue manager: a socketpair, one end to each over their
    /// supervisor sockets (SCM_RIGHTS). Our copies are closed at once: from then on the two talk
    /// directly, and no job crosses the supervisor.
    func connectToQueue(_ processor: SupervisedChild) {
        guard let queue = self.readyQueueManager, let queueChannel = queue.channel,
              let processorChannel = processor.channel, let tenant = processor.tenant,
              processor.lifecycle.state == .running, processor.state.queueGeneration != queue.generation,
              // One hand-over at a time: the last one is still on its way.
              !processor.awaiting.values.contains(where: { if case .handOver = $0.kind { true } else { false } }) else { return }
        var pair: [Int32] = [-1, -1]
        guard oneo_socketpair(&pair) == 0 else {
            self.logger.error("cannot make a socketpair for a processor; it waits for the next try", metadata: ["child": "\(processor.name)", "errno": "\(errno)"])
            return
        }
        defer {
            close(pair[0])
            close(pair[1])
        }
        // Each end is queued with its own descriptor (ChildIO keeps a duplicate until it is
        // written) and answered with `accepted`; one that is not taken in time is made again.
        let toProcessor = self.request()
        let toQueue = self.request()
        guard self.io.send(.queue(request: toProcessor), to: processorChannel, passing: pair[0]) else {
            self.logger.error("could not hand a processor its queue connection", metadata: ["child": "\(processor.name)"])
            return
        }
        guard self.io.send(
            .processor(tenant: tenant, name: processor.name, concurrency: self.configuration.processorConcurrency, request: toQueue),
            to: queueChannel, passing: pair[1]
        ) else {
            // The processor's end sees the socket close (our copies of the other end go too) and
            // waits for the next connection.
            self.logger.error("could not hand the queue manager a processor connection", metadata: ["child": "\(processor.name)"])
            return
        }
        let kind = SupervisedChild.Awaited.Kind.handOver(processor: processor.name, processorGeneration: processor.generation, queueGeneration: queue.generation)
        processor.awaiting[toProcessor] = .init(kind: kind, sent: .now)
        queue.awaiting[toQueue] = .init(kind: kind, sent: .now)
        processor.state.queueGeneration = queue.generation
        self.logger.info("processor connected to the queue manager", metadata: ["child": "\(processor.name)"])
    }

    /// A (re)started queue manager: every running processor gets a fresh connection to it.
    func connectProcessorsToQueue() {
        for child in self.children.values where child.role == .processor {
            self.connectToQueue(child)
        }
    }
}

extension Supervisor {
    /// The API listens: its port goes to `<data-dir>/run/api.port` (written beside and renamed,
    /// so a reader never sees half of it) and to the log.
    func apiListening(on port: Int) {
        let file = self.configuration.dataDirectory.apiPortFile
        let temporary = file + ".new"
        unlink(temporary)
        // A fresh file, never through a link, then renamed: a reader sees the whole number or none.
        let descriptor = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o644)
        let bytes = Array("\(port)\n".utf8)
        let written = descriptor >= 0 ? bytes.withUnsafeBytes { write(descriptor, $0.baseAddress, $0.count) } : -1
        if descriptor >= 0 { close(descriptor) }
        if written != bytes.count || rename(temporary, file) != 0 {
            unlink(temporary)
            self.logger.error("could not write the API's port file", metadata: ["path": "\(file)", "errno": "\(errno)"])
        }
        self.logger.notice("api listening", metadata: ["api": "http://\(self.configuration.host):\(port)"])
    }
}

extension Supervisor {
    /// A processor gets a connection to the tool router: its end over its channel, ours to the
    /// router, which knows the tenant from it.
    func connectToTools(_ processor: SupervisedChild) {
        guard let channel = processor.channel, let tenant = processor.tenant, !self.tools.availableTools.isEmpty else { return }
        var pair: [Int32] = [-1, -1]
        guard oneo_socketpair(&pair) == 0 else {
            self.logger.error("cannot make a socketpair for a processor's tools", metadata: ["child": "\(processor.name)", "errno": "\(errno)"])
            return
        }
        defer { close(pair[0]) }
        guard self.io.send(.tools(request: self.request()), to: channel, passing: pair[0]) else {
            close(pair[1])
            self.logger.error("could not hand a processor its tool connection", metadata: ["child": "\(processor.name)"])
            return
        }
        self.tools.attach(pair[1], tenant: tenant, processor: processor.name)
    }
}
