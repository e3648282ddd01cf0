import CSandbox
import Foundation
import Glibc

/// Waits on conditions the kernel signals, each with a deadline: a process's end through its
/// pidfd, a file's creation through inotify. No polling with sleeps.
enum Waiting {
    /// Blocks until every process in `pids` has ended or `seconds` pass; returns those still alive.
    static func forExit(of pids: [Int32], within seconds: Double) -> [Int32] {
        var waiting = pids.compactMap { pid -> (pid: Int32, fd: Int32)? in
            let fd = oneo_pidfd_open(pid)
            return fd >= 0 ? (pid, fd) : nil // already gone
        }
        defer { waiting.forEach { close($0.fd) } }
        let deadline = Date().addingTimeInterval(seconds)
        while !waiting.isEmpty {
            let left = deadline.timeIntervalSinceNow
            guard left > 0 else { break }
            var fds = waiting.map { pollfd(fd: $0.fd, events: Int16(POLLIN), revents: 0) }
            let ready = poll(&fds, nfds_t(fds.count), Int32(left * 1000) + 1)
            if ready < 0, errno == EINTR { continue }
            guard ready > 0 else { break }
            let ended = Set(fds.filter { $0.revents != 0 }.map(\.fd))
            waiting.filter { ended.contains($0.fd) }.forEach { close($0.fd) }
            waiting.removeAll { ended.contains($0.fd) }
        }
        return waiting.map(\.pid)
    }

    /// A watch on directories for a file created in any of them, armed before whatever
    /// creates it.
    final class Creation: Sendable {
        let fd: Int32

        /// nil when none of them could be watched (those that are gone or not yet there are
        /// passed over).
        init?(in directories: [String]) {
            self.fd = inotify_init1(Int32(IN_CLOEXEC))
            guard self.fd >= 0 else { return nil }
            let watched = directories.filter { inotify_add_watch(self.fd, $0, UInt32(IN_CREATE)) >= 0 }
            // (deinit closes the descriptor, also when this returns nil)
            guard !watched.isEmpty else { return nil }
        }

        deinit { close(self.fd) }

        /// Whether a file was created within `seconds`.
        func wait(within seconds: Double) -> Bool {
            var entry = pollfd(fd: self.fd, events: Int16(POLLIN), revents: 0)
            return poll(&entry, 1, Int32(seconds * 1000)) == 1
        }
    }
}
