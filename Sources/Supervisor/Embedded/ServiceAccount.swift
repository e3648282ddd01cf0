import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The unprivileged account third-party servers run as when we are root (PostgreSQL refuses to
/// run as root, and nothing should that does not need to). `setpriv` drops to it at exec time.
struct ServiceAccount: Sendable {
    let uid: uid_t
    let gid: gid_t

    /// nil when we are not root: then every child simply runs as us.
    static func forServers() -> ServiceAccount? {
        guard geteuid() == 0 else { return nil }
        for name in ["postgres", "nobody"] {
            if let entry = getpwnam(name) { return ServiceAccount(uid: entry.pointee.pw_uid, gid: entry.pointee.pw_gid) }
        }
        return nil
    }

    /// Wraps a command so that it runs as this account.
    func wrap(_ executable: String, _ arguments: [String]) -> (String, [String]) {
        ("/usr/bin/setpriv", ["--reuid=\(self.uid)", "--regid=\(self.gid)", "--clear-groups", "--", executable] + arguments)
    }

    /// Hands a directory tree to this account.
    func own(_ path: String) throws {
        let manager = FileManager.default
        var paths = [path]
        if let enumerator = manager.enumerator(atPath: path) {
            while let relative = enumerator.nextObject() as? String { paths.append(path + "/" + relative) }
        }
        for item in paths where lchown(item, self.uid, self.gid) != 0 {
            throw EmbeddedServiceError(service: "setup", detail: "cannot hand \(item) to uid \(self.uid): errno \(errno)")
        }
    }
}

/// An embedded PostgreSQL or Redis that could not be prepared or started.
public struct EmbeddedServiceError: Error, Sendable, CustomStringConvertible {
    public let service: String
    public let detail: String
    public var description: String { "\(self.service): \(self.detail)" }
}
