import CSeccomp

/// Why a policy file cannot be used: the executor refuses to run.
public struct PolicyError: Error, Sendable, Equatable, CustomStringConvertible {
    public let line: Int
    public let message: String

    public init(line: Int, message: String) {
        self.line = line
        self.message = message
    }

    public var description: String { self.line > 0 ? "line \(self.line): \(self.message)" : self.message }
}

extension SandboxPolicy {
    /// Parses `sandbox/<tool>.policy`. One statement per line, `#` starts a comment, and every
    /// statement but `tool`, `hostname` and `workdir` ends with `-- why`:
    ///
    ///     tool code_interpreter
    ///     program /usr/bin/python3 -I -S -B             -- why
    ///     namespaces user pid net mount ipc uts         -- why
    ///     identity 1000 1000                            -- why
    ///     mount tmpfs-ro / size=1m,mode=0755            -- why
    ///     mount bind-ro /usr /usr                       -- why (target, then host source)
    ///     mount symlink /bin usr/bin                    -- why
    ///     limit nproc 32                                -- why (k, m, g suffixes are binary)
    ///     timeout 10s | output 64k | egress search-backend -- why
    ///     seccomp default kill-process                  -- why (also: seccomp badarch …)
    ///     allow read                                    -- why
    ///     allow ioctl arg1 == TCGETS                    -- why
    ///     errno EPERM ioctl arg1 & 0xffffffff == TIOCSTI -- why
    ///
    /// Actions: `allow`, `errno NAME`, `succeed` (returns 0, never runs), `kill`, `log`. Conditions join with `and`; values are
    /// numbers or names from `PolicyConstants`, combined with `|`.
    public init(parsing text: String) throws(PolicyError) {
        self.init()
        var seenTool = false
        var unconditional = Set<String>()
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let number = index + 1
            var line = Substring(rawLine)
            if let hash = line.firstIndex(of: "#") { line = line[..<hash] }
            var why = ""
            if let (start, end) = Self.reasonMarker(in: line) {
                why = line[end...].trimmingCharacters(in: " \t")
                line = line[..<start]
            }
            let words = line.split(whereSeparator: { $0 == " " || $0 == "\t" }).map(String.init)
            guard let keyword = words.first else { continue }
            func fail(_ message: String) -> PolicyError { PolicyError(line: number, message: message) }
            let needsReason = !["tool", "hostname", "workdir"].contains(keyword)
            if needsReason && why.isEmpty { throw fail("'\(keyword)' needs a reason: end the line with '-- why'") }
            switch keyword {
            case "tool":
                guard words.count == 2, !seenTool else { throw fail("tool takes one name, once") }
                self.tool = words[1]
                seenTool = true
            case "program":
                guard words.count >= 2, words[1].hasPrefix("/") || words[1] == SandboxPolicy.executableProgram else {
                    throw fail("program takes an absolute path (or \(SandboxPolicy.executableProgram), the executor's own program) and its arguments")
                }
                self.program = Array(words.dropFirst())
            case "namespaces":
                for name in words.dropFirst() {
                    guard let namespace = Namespace(rawValue: name) else {
                        throw fail("unknown namespace '\(name)' (known: \(Namespace.allCases.map(\.rawValue).joined(separator: " ")))")
                    }
                    self.namespaces.append(namespace)
                }
                guard self.namespaces.contains(.user) else { throw fail("a jail needs the user namespace") }
                // A jail without its own pids, network, filesystem or IPC is no jail.
                for required in [Namespace.pid, .net, .mount, .ipc] where !self.namespaces.contains(required) {
                    throw fail("a jail needs the \(required.rawValue) namespace")
                }
            case "hostname":
                guard words.count == 2 else { throw fail("hostname takes one name") }
                self.hostname = words[1]
            case "identity":
                guard words.count == 3, let uid = UInt32(words[1]), let gid = UInt32(words[2]), uid != 0, gid != 0 else {
                    throw fail("identity takes a uid and a gid inside the jail, neither 0")
                }
                (self.uid, self.gid) = (uid, gid)
            case "mount":
                self.mounts.append(try Self.mount(words, why: why, fail: fail))
            case "workdir":
                guard words.count == 2, words[1].hasPrefix("/") else { throw fail("workdir takes an absolute path") }
                self.workdir = words[1]
            case "limit":
                guard words.count == 3, let resource = Limit.Resource(rawValue: words[1]) else {
                    throw fail("limit takes a resource (\(Limit.Resource.allCases.map(\.rawValue).joined(separator: " "))) and a value")
                }
                guard let value = Self.size(words[2]) else { throw fail("'\(words[2])' is not a number (k, m, g suffixes allowed)") }
                self.limits.append(Limit(resource: resource, value: value, why: why))
            case "timeout":
                guard words.count == 2, let milliseconds = Self.milliseconds(words[1]), (100...600_000).contains(milliseconds) else {
                    throw fail("timeout takes a duration between 100ms and 600s (500ms, 10s)")
                }
                self.timeoutMilliseconds = milliseconds
            case "output":
                guard words.count == 2, let bytes = Self.size(words[1]), (1_024...(16 << 20)).contains(bytes) else {
                    throw fail("output takes a size between 1k and 16m")
                }
                self.outputBytes = Int(bytes)
            case "egress":
                // Only places the router knows how to resolve: a line it would ignore is refused.
                guard words.count == 2, SandboxPolicy.egressPlaces.contains(words[1]) else {
                    throw fail("egress takes one of \(SandboxPolicy.egressPlaces.sorted().joined(separator: ", "))")
                }
                self.egress.append(words[1])
            case "after-start":
                guard words.count >= 3, words[1] == "kill" else { throw fail("after-start takes kill and the system calls to lock away") }
                for name in words.dropFirst(2) {
                    guard seccomp_syscall_resolve_name(name) >= 0 else { throw fail("'\(name)' is not a system call of this architecture") }
                    self.lockedAfterStart.append(name)
                }
            case "seccomp":
                guard words.count >= 3, let action = Self.action(Array(words.dropFirst(2))) else {
                    throw fail("seccomp default|badarch takes an action: allow, errno NAME, kill-process, log")
                }
                switch words[1] {
                case "default": self.defaultAction = action.action
                case "badarch": self.badArchitectureAction = action.action
                default: throw fail("seccomp takes default or badarch")
                }
            case "allow", "errno", "succeed", "kill", "log":
                guard let parsed = Self.action(words), parsed.used < words.count else { throw fail("a rule is ACTION SYSCALL [CONDITIONS]") }
                let name = words[parsed.used]
                let resolved = seccomp_syscall_resolve_name(name)
                guard resolved >= 0 else { throw fail("'\(name)' is not a system call of this architecture") }
                let conditions = try Self.conditions(Array(words[(parsed.used + 1)...]), fail: fail)
                if conditions.isEmpty {
                    guard unconditional.insert(name).inserted else { throw fail("'\(name)' already has a rule without conditions") }
                }
                self.rules.append(Rule(action: parsed.action, syscall: name, number: resolved, conditions: conditions, why: why, line: number))
            default:
                throw fail("unknown statement '\(keyword)'")
            }
        }
        guard seenTool else { throw PolicyError(line: 0, message: "the policy names no tool") }
        guard !self.program.isEmpty else { throw PolicyError(line: 0, message: "the policy names no program") }
        guard self.namespaces.contains(.user) else { throw PolicyError(line: 0, message: "the policy has no namespaces line with user") }
        guard self.mounts.first?.target == "/", [.tmpfs, .tmpfsReadOnly].contains(self.mounts.first?.kind) else {
            throw PolicyError(line: 0, message: "the first mount must be a tmpfs at /: the jail's root is built from nothing")
        }
        guard !self.rules.isEmpty else { throw PolicyError(line: 0, message: "the policy allows no system call") }
    }

    private static func mount(_ words: [String], why: String, fail: (String) -> PolicyError) throws(PolicyError) -> Mount {
        guard words.count >= 3, let kind = Mount.Kind(rawValue: words[1]) else {
            throw fail("mount takes a kind (\(Mount.Kind.allCases.map(\.rawValue).joined(separator: " "))) and a target")
        }
        let target = words[2]
        guard target.hasPrefix("/"), !target.split(separator: "/").contains(".."), !target.contains("//") else {
            throw fail("a mount target is an absolute path without '..'")
        }
        switch kind {
        case .tmpfs, .tmpfsReadOnly:
            guard words.count == 4 else { throw fail("a tmpfs takes options (size=…,mode=…)") }
            guard words[3].contains("size=") else { throw fail("a tmpfs needs a size= bound") }
            return Mount(kind: kind, target: target, source: nil, options: words[3], why: why)
        case .bindReadOnly where words.count == 4 && SandboxPolicy.placeholders.contains(words[3]):
            // A host path the launcher knows only at run time (the database's socket).
            return Mount(kind: kind, target: target, source: words[3], options: nil, why: why)
        case .bindReadOnly, .bindReadWrite, .device:
            guard words.count == 4, words[3].hasPrefix("/"), !words[3].split(separator: "/").contains("..") else {
                throw fail("a bind mount takes the host path to bind")
            }
            // The jail's root is staged over /tmp in its own mount namespace: a source under it
            // would be hidden by the time it is bound.
            guard words[3] != "/tmp", !words[3].hasPrefix("/tmp/") else { throw fail("a bind source may not lie under /tmp") }
            // The only devices a jail gets: ones that hold nothing and reach nothing.
            if kind == .device, !["/dev/null", "/dev/zero", "/dev/urandom"].contains(words[3]) {
                throw fail("a device mount may only be /dev/null, /dev/zero or /dev/urandom")
            }
            return Mount(kind: kind, target: target, source: words[3], options: nil, why: why)
        case .symlink:
            guard words.count == 4 else { throw fail("a symlink takes its text") }
            return Mount(kind: kind, target: target, source: words[3], options: nil, why: why)
        case .directory:
            guard words.count == 3 else { throw fail("a directory takes only its path") }
            return Mount(kind: kind, target: target, source: nil, options: nil, why: why)
        }
    }

    /// The action a rule or `seccomp` line starts with, and the words it used.
    private static func action(_ words: [String]) -> (action: Action, used: Int)? {
        switch words.first {
        case "allow": return (.allow, 1)
        case "kill", "kill-process": return (.killProcess, 1)
        case "log": return (.log, 1)
        case "errno":
            guard words.count >= 2, let value = PolicyConstants.errnos[words[1]] else { return nil }
            return (.errno(name: words[1], value: value), 2)
        case "succeed":
            // SECCOMP_RET_ERRNO with 0: the call returns 0 and the kernel never runs it.
            return (.errno(name: "0 (succeed without running)", value: 0), 1)
        default: return nil
        }
    }

    private static func conditions(_ words: [String], fail: (String) -> PolicyError) throws(PolicyError) -> [Condition] {
        var conditions: [Condition] = []
        var rest = words[...]
        while !rest.isEmpty {
            if !conditions.isEmpty {
                guard rest.first == "and" else { throw fail("conditions join with 'and'") }
                rest = rest.dropFirst()
            }
            guard let argumentWord = rest.first, argumentWord.hasPrefix("arg"), let argument = Int(argumentWord.dropFirst(3)), (0...5).contains(argument) else {
                throw fail("a condition starts with arg0 … arg5")
            }
            rest = rest.dropFirst()
            guard let opWord = rest.first, let op = Condition.Operator(rawValue: opWord) else {
                throw fail("a condition's operator is one of == != < <= > >= or & MASK ==")
            }
            rest = rest.dropFirst()
            if op == .maskedEqual {
                guard rest.count >= 3, let mask = PolicyConstants.value(rest[rest.startIndex]), rest[rest.startIndex + 1] == "==",
                      let value = PolicyConstants.value(rest[rest.startIndex + 2]) else {
                    throw fail("a masked condition is argN & MASK == VALUE")
                }
                let text = "\(argumentWord) & \(rest[rest.startIndex]) == \(rest[rest.startIndex + 2])"
                conditions.append(Condition(argument: argument, op: op, value: value, mask: mask, text: text))
                rest = rest.dropFirst(3)
            } else {
                guard let valueWord = rest.first, let value = PolicyConstants.value(valueWord) else { throw fail("'\(rest.first ?? "")' is not a known value") }
                conditions.append(Condition(argument: argument, op: op, value: value, mask: 0, text: "\(argumentWord) \(opWord) \(valueWord)"))
                rest = rest.dropFirst()
            }
        }
        return conditions
    }

    /// Where ` -- ` (or a leading `-- `) splits a statement from its reason.
    private static func reasonMarker(in line: Substring) -> (Substring.Index, Substring.Index)? {
        if line.hasPrefix("-- ") { return (line.startIndex, line.index(line.startIndex, offsetBy: 3)) }
        var index = line.startIndex
        while index < line.endIndex {
            if line[index...].hasPrefix(" -- ") || line[index...].hasPrefix("\t-- ") {
                return (index, line.index(index, offsetBy: 4))
            }
            index = line.index(after: index)
        }
        return nil
    }

    /// `64k`, `1g`, `32`: binary suffixes.
    static func size(_ text: String) -> UInt64? {
        let lower = text.lowercased()
        let (digits, shift): (Substring, UInt64) = switch lower.last {
        case "k": (lower.dropLast(), 10)
        case "m": (lower.dropLast(), 20)
        case "g": (lower.dropLast(), 30)
        default: (Substring(lower), 0)
        }
        guard let value = UInt64(digits), value <= (UInt64.max >> shift) else { return nil }
        return value << shift
    }

    static func milliseconds(_ text: String) -> Int? {
        if text.hasSuffix("ms") { return Int(text.dropLast(2)) }
        if text.hasSuffix("s"), let seconds = Int(text.dropLast()) { return seconds * 1000 }
        return nil
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in characters: String) -> String {
        var text = self
        while let first = text.first, characters.contains(first) { text = text.dropFirst() }
        while let last = text.last, characters.contains(last) { text = text.dropLast() }
        return String(text)
    }
}
