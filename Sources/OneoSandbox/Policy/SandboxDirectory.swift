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
        return (info.st_uid == 0 || info.st_uid == geteuid()) && info.st_mode & 0o022 == 0
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
