import Glibc

/// Where the policies are: `ONEO_SANDBOX_DIR`, else a `sandbox` folder beside or above the
/// executable (a checkout's `sandbox/`, found from `.build/<config>/`), else the installed
/// `/usr/share/oneo-ai/sandbox`.
public enum SandboxDirectory {
    public static func locate(executable: String, environment: [String: String]) -> String {
        if let configured = environment["ONEO_SANDBOX_DIR"], !configured.isEmpty { return configured }
        var directory = Self.parent(of: Self.resolved(executable))
        while directory != "/" && !directory.isEmpty {
            let candidate = directory + "/sandbox"
            if access(candidate + "/code_interpreter.policy", R_OK) == 0 { return candidate }
            directory = Self.parent(of: directory)
        }
        return "/usr/share/oneo-ai/sandbox"
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
