import Foundation
import OneoWire
#if canImport(Glibc)
import Glibc
#endif

/// The unprivileged identity a child runs as when we are root; `setpriv` drops to it at exec
/// time. PostgreSQL and Redis run as the servers' account; each tenant's processor as a uid of
/// its own, so that no processor can signal, trace or read the memory of another tenant's.
struct ProcessAccount: Sendable, Equatable {
    static let setpriv = "/usr/bin/setpriv"

    let uid: uid_t
    let gid: gid_t
    /// Supplementary groups: the servers get the processors' group, so that their sockets can
    /// be group-owned and reachable by processors and nobody else.
    var groups: [gid_t] = []

    var setprivArguments: [String] {
        ["--reuid=\(self.uid)", "--regid=\(self.gid)", "--no-new-privs"]
            + (self.groups.isEmpty ? ["--clear-groups"] : ["--groups=" + self.groups.map(String.init).joined(separator: ",")])
    }

    /// nil when we are not root: then every child simply runs as us. `groups` are the client
    /// groups the servers' sockets are opened to.
    static func forServers(groups: [gid_t]) -> ProcessAccount? {
        guard geteuid() == 0 else { return nil }
        for name in ["postgres", "nobody"] {
            if let entry = getpwnam(name) {
                return ProcessAccount(uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid, groups: groups)
            }
        }
        return nil
    }

    /// Tenant uids are base + 1 … base + 2^24 - 1; the queue manager's uid and the database
    /// clients' group sit just past them, so no tenant's processor is either.
    static func databaseGroup(uidBase: UInt32) -> gid_t { uidBase + (1 << 24) }

    /// The queue manager's account: a uid of its own, in the database clients' group (which alone
    /// reaches the embedded PostgreSQL's socket besides the server). nil when we are not root.
    static func forQueueManager(uidBase: UInt32) -> ProcessAccount? {
        guard geteuid() == 0 else { return nil }
        return ProcessAccount(uid: uidBase + (1 << 24), gid: Self.databaseGroup(uidBase: uidBase))
    }

    /// The account of one tenant's processor: uid base + tenant id, the base as its group. nil
    /// when we are not root.
    static func forProcessor(tenant: Int64, uidBase: UInt32) -> ProcessAccount? {
        guard geteuid() == 0 else { return nil }
        return ProcessAccount(uid: uidBase &+ UInt32(truncatingIfNeeded: tenant), gid: uidBase)
    }

    /// A tool's executors' account: a uid and group per tool, past the tenants' and the queue
    /// manager's; its jails' processes run as it too, in user namespaces of their own. One per
    /// tool, so that code escaping the code interpreter's jail is not the uid of the image
    /// launcher (which holds keys for a moment) nor of file search's. nil when we are not root.
    static func forToolExecutor(_ tool: String, uidBase: UInt32) -> ProcessAccount? {
        guard geteuid() == 0 else { return nil }
        let index = UInt32(ToolCatalog.names.firstIndex(of: tool) ?? ToolCatalog.names.count)
        let uid = uidBase + (1 << 24) + 2 + index
        return ProcessAccount(uid: uid, gid: uid)
    }

    /// The API's account: the base uid itself (tenant ids start at 1, so it is no tenant's), with
    /// the database clients' group for the database socket. nil when we are not root.
    static func forAPI(uidBase: UInt32) -> ProcessAccount? {
        guard geteuid() == 0 else { return nil }
        return ProcessAccount(uid: uidBase, gid: uidBase, groups: [Self.databaseGroup(uidBase: uidBase)])
    }

    /// Why this account could not run `path` (a directory on the way it cannot enter, a file it
    /// cannot execute), or nil when it can. Checked before spawning, so that the operator reads
    /// the reason instead of a bare exit status 126.
    func cannotExecute(_ path: String) -> String? {
        var prefix = ""
        let components = path.split(separator: "/").map(String.init)
        for (index, component) in components.enumerated() {
            prefix += "/" + component
            var info = stat()
            guard stat(prefix, &info) == 0 else { return "\(prefix): \(String(cString: strerror(errno)))" }
            let mode = info.st_mode
            let allowed: Bool
            if info.st_uid == self.uid {
                allowed = mode & S_IXUSR != 0
            } else if info.st_gid == self.gid || self.groups.contains(info.st_gid) {
                allowed = mode & S_IXGRP != 0
            } else {
                allowed = mode & S_IXOTH != 0
            }
            if !allowed {
                let what = index == components.count - 1 ? "cannot execute" : "cannot enter directory"
                return "uid \(self.uid) \(what) \(prefix) (mode \(String(mode & 0o7777, radix: 8)))"
            }
        }
        return nil
    }

    /// Hands a directory tree to this account, walking it through descriptors: each directory
    /// opened relative to its parent with `O_NOFOLLOW`, each entry changed with `fchownat`
    /// without following links. The account may already own (and so rearrange) the tree; a link
    /// it plants is changed as a link, never followed to a file of anyone else's.
    func own(_ path: String) throws {
        let top = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
        guard top >= 0 else { throw EmbeddedServiceError(service: "setup", detail: "cannot open directory \(path): errno \(errno)") }
        guard fchown(top, self.uid, self.gid) == 0 else {
            close(top)
            throw EmbeddedServiceError(service: "setup", detail: "cannot hand \(path) to uid \(self.uid): errno \(errno)")
        }
        try self.own(contentsOf: top, path: path, depth: 0)
    }

    /// Takes over `directory` (closing it) and hands every entry below it to this account.
    private func own(contentsOf directory: Int32, path: String, depth: Int) throws {
        guard depth < 32, let stream = fdopendir(directory) else {
            close(directory)
            throw EmbeddedServiceError(service: "setup", detail: "cannot walk \(path) (depth \(depth)): errno \(errno)")
        }
        defer { closedir(stream) }
        while let entry = readdir(stream) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard name != ".", name != ".." else { continue }
            guard fchownat(directory, name, self.uid, self.gid, AT_SYMLINK_NOFOLLOW) == 0 else {
                throw EmbeddedServiceError(service: "setup", detail: "cannot hand \(path)/\(name) to uid \(self.uid): errno \(errno)")
            }
            let child = openat(directory, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
            // Not a directory (or a link, refused by O_NOFOLLOW): nothing below it.
            if child >= 0 { try self.own(contentsOf: child, path: path + "/" + name, depth: depth + 1) }
        }
    }
}

/// An embedded PostgreSQL or Redis that could not be prepared or started.
public struct EmbeddedServiceError: Error, Sendable, CustomStringConvertible {
    public let service: String
    public let detail: String
    public var description: String { "\(self.service): \(self.detail)" }
}

/// Lets a group enter a directory (and nothing more): how the API and the queue manager reach
/// a server's socket. The directory is opened without following a symlink and changed through
/// its descriptor: the server's account owns the directory above and could swap in a link to
/// any file between a check and a chown by path.
func grantGroupPassage(_ path: String, group: gid_t) throws {
    let descriptor = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)
    guard descriptor >= 0 else { throw EmbeddedServiceError(service: "setup", detail: "cannot open directory \(path): errno \(errno)") }
    defer { close(descriptor) }
    guard fchown(descriptor, UInt32.max, group) == 0, fchmod(descriptor, 0o710) == 0 else {
        throw EmbeddedServiceError(service: "setup", detail: "cannot open \(path) to group \(group): errno \(errno)")
    }
}
