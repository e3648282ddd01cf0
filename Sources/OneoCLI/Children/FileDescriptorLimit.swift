import Glibc

/// The process's open-file limit: a server that holds thousands of connections raises its soft
/// limit to the hard one (the default soft 1,024 would run out first).
enum FileDescriptorLimit {
    /// Raises the soft limit to the hard limit (at most 1,048,576) and returns the soft limit now.
    static func raiseToHard() -> Int {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return 1_024 }
        let wanted = min(limit.rlim_max, 1 << 20)
        if limit.rlim_cur < wanted {
            var raised = limit
            raised.rlim_cur = wanted
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        return Int(min(limit.rlim_cur, UInt(Int32.max)))
    }
}
