import Foundation
import Synchronization

/// The one thread every child is spawned from. Linux delivers a child's parent-death signal when
/// the *thread* that created it exits, not the process; the cooperative pool's threads come and
/// go, so a child spawned from one could be killed while we are alive and well. This thread lives
/// as long as the supervisor.
final class SpawnThread: Sendable {
    private let queue = Mutex<[@Sendable () -> Void]>([])
    private let work = DispatchSemaphore(value: 0)

    init() {
        let thread = Thread { [self] in
            while true {
                self.work.wait()
                let next = self.queue.withLock { $0.isEmpty ? nil : $0.removeFirst() }
                next?()
            }
        }
        thread.name = "oneo-spawn"
        thread.start()
    }

    /// Runs `body` on the spawn thread. It must be quick: posix_spawn and a few syscalls.
    func run<Result: Sendable>(_ body: @escaping @Sendable () -> Result) async -> Result {
        await withCheckedContinuation { continuation in
            self.queue.withLock { $0.append { continuation.resume(returning: body()) } }
            self.work.signal()
        }
    }
}
