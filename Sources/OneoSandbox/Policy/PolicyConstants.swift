/// The names a policy may use for argument values and error numbers (x86_64 Linux values), so a
/// reviewer reads `TIOCSTI`, not `0x5412`.
public enum PolicyConstants {
    public static let values: [String: UInt64] = [
        // ioctl requests
        "TCGETS": 0x5401, "TCSETS": 0x5402, "TCSETSW": 0x5403, "TCSETSF": 0x5404, "TIOCGWINSZ": 0x5413, "TIOCSWINSZ": 0x5414,
        "TIOCSTI": 0x5412, "TIOCLINUX": 0x541C, "TIOCGPGRP": 0x540F, "FIONREAD": 0x541B, "FIONBIO": 0x5421,
        "FIOCLEX": 0x5451, "FIONCLEX": 0x5450,
        // clone flags
        "CLONE_NEWNS": 0x0002_0000, "CLONE_NEWCGROUP": 0x0200_0000, "CLONE_NEWUTS": 0x0400_0000, "CLONE_NEWIPC": 0x0800_0000,
        "CLONE_NEWUSER": 0x1000_0000, "CLONE_NEWPID": 0x2000_0000, "CLONE_NEWNET": 0x4000_0000, "CLONE_THREAD": 0x0001_0000,
        "CLONE_VM": 0x0000_0100,
        // socket families
        "AF_UNIX": 1, "AF_INET": 2, "AF_INET6": 10, "AF_NETLINK": 16, "AF_PACKET": 17,
        // mmap / mprotect protections
        "PROT_READ": 1, "PROT_WRITE": 2, "PROT_EXEC": 4,
        // prctl options
        "PR_SET_PDEATHSIG": 1, "PR_GET_PDEATHSIG": 2, "PR_GET_DUMPABLE": 3, "PR_SET_NAME": 15, "PR_GET_NAME": 16,
        "PR_CAPBSET_READ": 23, "PR_SET_VMA": 0x5356_4D41, "PR_SET_NO_NEW_PRIVS": 38,
        // execveat flags
        "AT_EMPTY_PATH": 0x1000,
        // seccomp operations
        "SECCOMP_SET_MODE_STRICT": 0, "SECCOMP_SET_MODE_FILTER": 1, "SECCOMP_GET_ACTION_AVAIL": 2, "SECCOMP_GET_NOTIF_SIZES": 3,
        // fcntl commands
        "F_DUPFD": 0, "F_GETFD": 1, "F_SETFD": 2, "F_GETFL": 3, "F_SETFL": 4, "F_DUPFD_CLOEXEC": 1030,
        // personality
        "PER_LINUX": 0, "PERSONALITY_QUERY": 0xFFFF_FFFF,
        "MASK32": 0xFFFF_FFFF,
        // file types (mknod's mode)
        "S_IFMT": 0o170000, "S_IFIFO": 0o010000, "S_IFCHR": 0o020000, "S_IFBLK": 0o060000, "S_IFREG": 0o100000,
    ]

    public static let errnos: [String: Int32] = [
        "EPERM": 1, "ENOENT": 2, "EIO": 5, "EBADF": 9, "EAGAIN": 11, "ENOMEM": 12, "EACCES": 13, "EFAULT": 14, "EINVAL": 22,
        "ENOTTY": 25, "ENOSPC": 28, "ENOSYS": 38, "EOPNOTSUPP": 95, "EAFNOSUPPORT": 97,
    ]

    /// A number (decimal or 0x hex) or a name, or several joined by `|`.
    public static func value(_ text: String) -> UInt64? {
        var total: UInt64 = 0
        for part in text.split(separator: "|", omittingEmptySubsequences: false) {
            let word = String(part)
            if let named = Self.values[word] {
                total |= named
            } else if word.hasPrefix("0x"), let hex = UInt64(word.dropFirst(2), radix: 16) {
                total |= hex
            } else if let decimal = UInt64(word) {
                total |= decimal
            } else {
                return nil
            }
        }
        return total
    }
}
