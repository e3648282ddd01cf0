import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// How a child ended.
enum ExitStatus: Sendable, Hashable, CustomStringConvertible {
    case exited(Int32)
    case signalled(Int32)

    init(waitStatus status: Int32) {
        if status & 0x7F == 0 {
            self = .exited((status >> 8) & 0xFF)
        } else {
            self = .signalled(status & 0x7F)
        }
    }

    var description: String {
        switch self {
        case .exited(let code): return "exit code \(code)"
        case .signalled(let signal): return "signal \(signal) (\(String(cString: strsignal(signal))))"
        }
    }
}

/// The one reaper: a dedicated thread blocked in `waitpid(-1)` (a blocking call, so never on the
/// cooperative pool) that hands each exit to whoever awaits that pid.
actor ProcessTable {
    private var waiters: [pid_t: CheckedContinuation<ExitStatus, Never>] = [:]
    private var exited: [pid_t: ExitStatus] = [:]
    private let wakeReaper = DispatchSemaphore(value: 0)

    init() {
        let table = self
        let wake = self.wakeReaper
        Thread.detachNewThread {
            while true {
                var status: Int32 = 0
                let pid = waitpid(-1, &status, 0)
                if pid > 0 {
                    let exit = ExitStatus(waitStatus: status)
                    Task { await table.record(pid, exit) }
                } else if errno == ECHILD {
                    wake.wait()
                }
            }
        }
    }

    /// Call after each spawn: the reaper sleeps while we have no children.
    nonisolated func childStarted() {
        self.wakeReaper.signal()
    }

    func waitForExit(_ pid: pid_t) async -> ExitStatus {
        if let status = self.exited.removeValue(forKey: pid) { return status }
        return await withCheckedContinuation { self.waiters[pid] = $0 }
    }

    private func record(_ pid: pid_t, _ status: ExitStatus) {
        if let waiter = self.waiters.removeValue(forKey: pid) {
            waiter.resume(returning: status)
        } else {
            self.exited[pid] = status
        }
    }
}
