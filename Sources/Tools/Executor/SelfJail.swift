import CProcess
import CSandbox
import Glibc
import OneoSandbox
import OneoWire

/// How the executors that run our own code (web search, images, file search) are sandboxed: the
/// process the supervisor starts builds the jail its policy describes and starts this same
/// program inside it (run from a descriptor opened on itself: execveat), one jail per call. The
/// jailed program runs under the policy's seccomp filter from its first instruction and is what
/// parses every byte from the outside.
///
/// One jail serves one call and is killed after it: a key handed over for an image, or a file
/// search grant, dies with the call it was for, and a jail that something hostile took over
/// never sees the next tenant's call. This process sits between the router and the jail: it
/// passes the call in, the jail's egress requests out and their connections back in, and the
/// answer out; it never sends a jail a second call. The next jail is started while the current
/// one works, so a call does not wait for a jail to start (its start counts against the call's
/// time, which ends before the router's).
struct SelfJail {
    let jail: Jail
    let program: Int32
    let arguments: [String]
    /// The longest call (the policy's timeout and `ToolCallLimits.launcherMargin`): past it the
    /// jail is killed and the call answered with an error, well before the router's own deadline
    /// (`routerMargin`, from when it sent the call) would kill us.
    let longestCall: Duration
    let router: FrameSocket

    /// One started jail: its pid namespace's first process and our end of its socket.
    struct Started {
        let pid: Int32
        let pidfd: Int32
        let socket: FrameSocket

        /// Kills the jail (its first process's death ends every process in it) and reaps it.
        func end() {
            _ = oneo_pidfd_kill(self.pidfd)
            var ended: Int32 = 0, status: Int32 = 0
            while oneo_pidfd_wait(self.pidfd, 1, &ended, &status) == EINTR {}
            close(self.pidfd)
        }
    }

    /// Runs until the router closes its socket; returns the exit status.
    static func run(jail: Jail, arguments: [String]) -> Int32 {
        let program = open("/proc/self/exe", O_RDONLY | O_CLOEXEC)
        guard program >= 0 else {
            Log.line("refusing to run: cannot open our own program: \(String(cString: strerror(errno)))")
            return 71
        }
        let launcher = SelfJail(
            jail: jail, program: program, arguments: arguments, longestCall: .milliseconds(jail.policy.timeoutMilliseconds) + ToolCallLimits.launcherMargin,
            router: FrameSocket(descriptor: FrameSocket.childDescriptor, acceptsDescriptors: true)
        )
        return launcher.serve(tool: jail.policy.tool)
    }

    func start() throws -> Started {
        var ends: [Int32] = [-1, -1]
        guard oneo_socketpair(&ends) == 0 else { throw ToolFailure(message: "socketpair: \(String(cString: strerror(errno)))") }
        defer { close(ends[1]) }
        let pid: Int32
        do {
            pid = try self.jail.spawn(
                arguments: self.arguments, environment: [],
                descriptors: .init(input: -1, output: 2, error: 2, extra: ends[1], program: self.program)
            )
        } catch {
            close(ends[0])
            throw error
        }
        let pidfd = oneo_pidfd_open(pid)
        guard pidfd >= 0 else {
            _ = oneo_jail_kill(pid)
            close(ends[0])
            throw ToolFailure(message: "pidfd_open: \(String(cString: strerror(errno)))")
        }
        let socket = FrameSocket(descriptor: ends[0], acceptsDescriptors: false)
        socket.setSendTimeout(seconds: 10)
        return Started(pid: pid, pidfd: pidfd, socket: socket)
    }

    func serve(tool: String) -> Int32 {
        var next: Started
        do {
            next = try self.start()
        } catch {
            Log.line("refusing to run: the first jail did not start: \(error)")
            return 71
        }
        Log.line("\(tool) ready: one jail per call")
        while true {
            let request: ToolRequest
            do {
                request = try self.router.receive(ToolRequest.self)
            } catch {
                // Nothing of a frame is ever passed to a jail unread: a broken one is answered here.
                switch error.code {
                case .closed:
                    next.end()
                    return 0
                case .malformed:
                    self.router.closeUnclaimedDescriptors()
                    try? self.router.send(ToolResponse(id: "", error: "malformed request: \(error)"))
                    continue
                default:
                    Log.line("the router's connection failed: \(error)")
                    next.end()
                    return 4
                }
            }
            // The call's time runs from here, the next jail's start included: the launcher
            // answers within it, always before the router's own deadline.
            let deadline = ContinuousClock.now + self.longestCall
            let current = next
            // The next call's jail starts now, while this one works, so no call waits for a start.
            do {
                next = try self.start()
            } catch {
                Log.line("starting the next jail failed: \(error)")
                current.end()
                return 71
            }
            let answer = self.relay(request, to: current, before: deadline)
            current.end()
            do {
                try self.router.send(answer)
            } catch where error.code == .oversized || error.code == .unencodable {
                try? self.router.send(ToolResponse(id: answer.id, error: "the tool's result was over the size limit"))
            } catch {
                Log.line("sending an answer failed: \(error)")
                next.end()
                return 4
            }
        }
    }

    /// One call through one jail: its egress requests go to the router, their connections back;
    /// its answer (or what went wrong) is returned. At most `ToolCallLimits.egressRequests` go to
    /// the router (it allows the connections and refuses one more); a jail that asks past that, or
    /// takes longer than `longestCall`, ends its call with an error, and the launcher lives on.
    func relay(_ request: ToolRequest, to started: Started, before deadline: ContinuousClock.Instant) -> ToolResponse {
        let failed = ToolResponse(id: request.id, error: "the \(request.tool) executor failed; try again")
        // A connection that came with a broken frame goes nowhere, least of all to a later call.
        defer { self.router.closeUnclaimedDescriptors() }
        do {
            try started.socket.send(request)
            var asked = 0
            while true {
                let frame = try started.socket.receive(ExecutorFrame.self, before: deadline)
                guard let target = frame.egress else {
                    var response = frame.response
                    response.id = request.id
                    return response
                }
                asked += 1
                guard asked <= ToolCallLimits.egressRequests else {
                    Log.line("a jail asked for too many connections; killed")
                    return failed
                }
                // The router needs time to connect; without it, the call ends here.
                guard deadline - ContinuousClock.now >= ToolCallLimits.egressTimeNeeded else {
                    Log.line("a jail asked for a connection with no time left; killed")
                    return failed
                }
                try self.router.send(EgressRequest(id: request.id, egress: target))
                let grant = try self.router.receive(EgressGrant.self, limit: 4096)
                if grant.error == nil, let descriptor = self.router.takeDescriptor() {
                    defer { close(descriptor) }
                    try started.socket.send(grant, descriptor: descriptor)
                } else {
                    try started.socket.send(grant)
                }
            }
        } catch {
            Log.line("a jail failed its call: \(error)")
            return failed
        }
    }
}
