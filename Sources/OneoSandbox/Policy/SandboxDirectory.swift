import Glibc

/// Where the policies are: `ONEO_SANDBOX_DIR`, else a `sandbox` folder beside or above the
/// executable (a checkout's `sandbox/`, found from `.build/<config>/`), else the installed
/// `/usr/share/oneo-ai/sandbox`.
public enum SandboxDirectory {
    ///
    /// A folder or policy anyone but root and us could write is passed over: a planted policy
    /// would be a sandbox turned off.
    public static func locate(executable: String, environment: [String: String]) -> String {
        if let configured = environment["ONEO_SANDBOX_DIR"], !configured.isEmpty { return configured }
        var directory = Self.parent(of: Self.resolved(executable))
        while directory != "/" && !directory.isEmpty {
            let candidate = directory + "/sandbox"
            let policy = candidate + "/code_interpreter.policy"
            if access(policy, R_OK) == 0, Self.isTrusted(candidate), Self.isTrusted(policy) { return candidate }
            directory = Self.parent(of: directory)
        }
        return "/usr/share/oneo-ai/sandbox"
    }

    /// Owned by root or by us, and writable by neither group nor others.
    public static func isTrusted(_ path: String) -> Bool {
        var info = stat()
        guard stat(path, &info) == 0 else { return false }
        return Self.isTrusted(info)
    }

    static func isTrusted(_ info: stat) -> Bool {
        (info.st_uid == 0 || info.st_uid == geteuid()) && info.st_mode & 0o022 == 0
    }

    public struct UntrustedPolicy: Error, CustomStringConvertible {
        public let description: String
    }

    /// A policy file's bytes, read from the descriptor whose owner and mode were checked (no
    /// window between the check and the read, no symlink followed): a regular file owned by root
    /// or by us, writable by no one else, at most 256 KiB.
    public static func readPolicy(_ path: String) throws(UntrustedPolicy) -> [UInt8] {
        let fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC)
        guard fd >= 0 else { throw UntrustedPolicy(description: "\(path) cannot be opened (errno \(errno); a symlink is not followed)") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else { throw UntrustedPolicy(description: "\(path) is not a regular file") }
        guard Self.isTrusted(info) else { throw UntrustedPolicy(description: "\(path) is not owned by root or by us, or others may write it") }
        guard info.st_size <= 256 * 1024 else { throw UntrustedPolicy(description: "\(path) is over 256 KiB") }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while filled < bytes.count {
            let count = bytes[filled...].withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if count < 0, errno == EINTR { continue }
            guard count > 0 else { break }
            filled += count
        }
        return Array(bytes.prefix(filled))
    }

    public static func policyPath(tool: String, in directory: String) -> String {
        directory + "/" + tool + ".policy"
    }

    static func resolved(_ path: String) -> String {
        guard let real = realpath(path, nil) else { return path }
        defer { free(real) }
        return String(cString: real)
    }

    static func parent(of path: String) -> String {
        guard let slash = path.lastIndex(of: "/") else { return "" }
        return slash == path.startIndex ? "/" : String(path[..<slash])
    }
}
