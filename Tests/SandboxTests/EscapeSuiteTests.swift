import CSandbox
import Foundation
import Glibc
import OneoWire
import Testing

/// Real escape attempts from inside the code interpreter's jail. Each asserts that the attempt
/// was contained (refused with an error, or the process killed by the seccomp filter, or stopped
/// by a limit) and that the executor then serves the next call.
@Suite("sandbox escape suite", .serialized, .enabled(if: ToolExecutor.jailsAvailable, ToolExecutor.skipReason), .timeLimit(.minutes(5)))
struct EscapeSuiteTests {
    enum Outcome: Sendable, CustomStringConvertible {
        /// The code itself saw the refusal and printed `blocked`.
        case refused
        /// The seccomp filter killed the process (SIGSYS) after it printed `calling`.
        case killedByFilter
        /// The wall clock ended it.
        case timedOut
        /// The output cap ended it.
        case truncated

        var description: String {
            switch self {
            case .refused: "refused"
            case .killedByFilter: "killed by the filter"
            case .timedOut: "timed out"
            case .truncated: "truncated"
            }
        }
    }

    struct Attempt: Sendable, CustomStringConvertible {
        let name: String
        let code: String
        let outcome: Outcome
        var description: String { self.name }
    }

    static let syscallPrelude = """
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.syscall.restype = ctypes.c_long
        def sc(n, *a):
            print("calling", n, flush=True)
            r = libc.syscall(ctypes.c_long(n), *[ctypes.c_long(x) for x in a])
            print("ESCAPED" if r >= 0 else "blocked", r, ctypes.get_errno(), flush=True)

        """

    static func refused(_ name: String, _ body: String) -> Attempt {
        let indented = body.split(separator: "\n", omittingEmptySubsequences: false).map { "    " + $0 }.joined(separator: "\n")
        return Attempt(name: name, code: "try:\n\(indented)\n    print('ESCAPED')\nexcept BaseException as e:\n    print('blocked', type(e).__name__, e)\n", outcome: .refused)
    }

    static func filtered(_ name: String, _ call: String) -> Attempt {
        Attempt(name: name, code: Self.syscallPrelude + call + "\n", outcome: .killedByFilter)
    }

    static let attempts: [Attempt] = [
        // Network: every socket family is refused, and there is no network namespace to reach.
        refused("TCP socket", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_STREAM)"),
        refused("UDP socket", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM)"),
        refused("IPv6 socket", "import socket\nsocket.socket(socket.AF_INET6, socket.SOCK_STREAM)"),
        refused("raw socket", "import socket\nsocket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)"),
        refused("packet socket", "import socket\nsocket.socket(socket.AF_PACKET, socket.SOCK_RAW)"),
        refused("netlink socket", "import socket\nsocket.socket(socket.AF_NETLINK, socket.SOCK_RAW, 0)"),
        refused("Unix socket to a host path", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('/run/oneo-ai.sock')"),
        refused("abstract Unix socket", "import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect('\\0oneo')"),
        refused("DNS lookup", "import socket\nsocket.getaddrinfo('example.com', 80)"),
        refused("HTTP to the local API port", "import urllib.request\nurllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=1)"),
        filtered("an AF_INET socketpair", "sc(53, 2, 1, 0, 0)"),
        // Files the host has: none of them exists in the jail.
        refused("read /etc/shadow", "open('/etc/shadow').read()"),
        refused("read the host's /proc/1/environ", "open('/proc/1/environ').read()"),
        refused("read /proc/self/root", "import os\nos.listdir('/proc/self/root')"),
        refused("write /proc/self/mem", "open('/proc/self/mem', 'wb').write(b'x')"),
        refused("climb out with ..", "open('../../../../../../root/.bash_history').read()"),
        refused("a symlink to a host file", "import os\nos.symlink('/etc/passwd', 'p')\nopen('p').read()"),
        refused("write into /usr", "open('/usr/escape', 'w').write('x')"),
        refused("write into the root", "open('/escape', 'w').write('x')"),
        refused("write into /dev", "open('/dev/escape', 'w').write('x')"),
        refused("chmod a system binary", "import os\nos.chmod('/usr/bin/python3', 0o4777)"),
        // Kernel interfaces a jail never needs: the filter kills the process.
        filtered("ptrace", "sc(101, 0, 0, 0, 0)"),
        filtered("mount", "sc(165, 0, 0, 0, 0, 0)"),
        filtered("umount2", "sc(166, 0, 0)"),
        filtered("pivot_root", "sc(155, 0, 0)"),
        filtered("unshare", "sc(272, 0x10000000)"),
        filtered("setns", "sc(308, 0, 0)"),
        filtered("keyctl", "sc(250, 0, 0, 0, 0, 0)"),
        filtered("bpf", "sc(321, 0, 0, 0)"),
        filtered("perf_event_open", "sc(298, 0, 0, 0, 0, 0)"),
        filtered("userfaultfd", "sc(323, 0)"),
        filtered("io_uring_setup", "sc(425, 1, 0)"),
        filtered("personality", "sc(135, 0x0400000)"),
        filtered("open_by_handle_at", "sc(304, 0, 0, 0)"),
        filtered("name_to_handle_at", "sc(303, 0, 0, 0, 0, 0)"),
        filtered("execveat", "sc(322, 0, 0, 0, 0, 0x1000)"),
        filtered("pidfd_getfd", "sc(438, 0, 0, 0)"),
        filtered("pidfd_open", "sc(434, 1, 0)"),
        filtered("process_vm_writev", "sc(311, 1, 0, 0, 0, 0, 0)"),
        filtered("kexec_load", "sc(246, 0, 0, 0, 0)"),
        filtered("init_module", "sc(175, 0, 0, 0)"),
        filtered("the new mount API (fsopen)", "sc(430, 0, 0)"),
        filtered("open_tree", "sc(428, 0, 0, 0)"),
        filtered("setuid to root", "sc(105, 0)"),
        filtered("clone with a new user namespace", "sc(56, 0x10000000 | 17, 0, 0, 0, 0)"),
        filtered("the x32 ABI (getpid | 0x40000000)", "sc(0x40000000 + 39)"),
        Attempt(
            name: "the i386 ABI through int 0x80",
            code: """
                import mmap, ctypes
                m = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
                m.write(bytes([0xb8, 20, 0, 0, 0, 0xcd, 0x80, 0xc3]))
                f = ctypes.CFUNCTYPE(ctypes.c_int)(ctypes.addressof(ctypes.c_char.from_buffer(m)))
                print("calling", flush=True)
                print("ESCAPED", f())

                """,
            outcome: .killedByFilter
        ),
        refused("clone3 (answered ENOSYS)", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nlibc.syscall.restype = ctypes.c_long\nif libc.syscall(435, 0, 0) < 0: raise OSError(ctypes.get_errno(), 'clone3')"),
        refused("TIOCSTI", "import fcntl, termios\nfcntl.ioctl(1, termios.TIOCSTI, b'x')"),
        refused("TIOCSTI with high bits set", "import ctypes\nlibc = ctypes.CDLL(None, use_errno=True)\nif libc.ioctl(1, ctypes.c_ulong(0x100005412), ctypes.c_char_p(b'x')) < 0: raise OSError(ctypes.get_errno(), 'ioctl')"),
        refused("TIOCLINUX", "import fcntl\nfcntl.ioctl(1, 0x541C, b'\\x06')"),
        refused("memfd_create for an in-memory executable", "import os\nos.memfd_create('x')"),
        refused("a setuid binary runs as the jail's uid", "import subprocess, os\nout = subprocess.run(['/usr/bin/su', '-c', 'id -u'], capture_output=True, timeout=3)\nif b'uid=0' in out.stdout or out.stdout.strip() == b'0': print('ESCAPED')\nraise PermissionError('su: ' + out.stderr.decode()[:80])"),
        refused("kill every process it can see", "import os\nos.kill(-1, 9)\nraise PermissionError('only its own pid namespace')"),
        // Limits.
        refused("memory bomb", "x = bytearray(3 * 1024 ** 3)"),
        Attempt(
            name: "descriptor exhaustion",
            code: "import os\nfds = []\ntry:\n    while True:\n        fds.append(os.open('/dev/null', os.O_WRONLY))\nexcept OSError as e:\n    print('blocked' if e.errno == 24 and len(fds) < 64 else 'ESCAPED', len(fds), e.errno)\n",
            outcome: .refused
        ),
        refused("run a program written to /work (noexec)", "import shutil, os, subprocess\nshutil.copy('/usr/bin/true', 'x')\nos.chmod('x', 0o755)\nsubprocess.run(['./x'], check=True)"),
        refused("disk fill", "import os\nfor i in range(100):\n    open(f'fill{i}', 'wb').write(b'x' * (1 << 20))"),
        refused("a sparse 1 TiB file", "f = open('sparse', 'wb')\nf.truncate(1 << 40)"),
        Attempt(name: "CPU spin", code: "while True:\n    pass\n", outcome: .timedOut),
        Attempt(name: "fork bomb", code: "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n", outcome: .timedOut),
        Attempt(name: "ignoring SIGTERM", code: "import signal, time\nsignal.signal(signal.SIGTERM, signal.SIG_IGN)\ntime.sleep(60)\n", outcome: .timedOut),
        Attempt(name: "a 1-byte trickle", code: "import sys, time\nwhile True:\n    sys.stdout.write('x'); sys.stdout.flush(); time.sleep(0.05)\n", outcome: .timedOut),
        Attempt(name: "huge output", code: "print('x' * 10_000_000)\n", outcome: .truncated),
        Attempt(name: "endless output", code: "while True:\n    print('x' * 1000)\n", outcome: .truncated),
    ]

    @Test("each attempt is contained and the executor serves the next call", arguments: Self.attempts)
    func contained(_ attempt: Attempt) throws {
        let executor = try ToolExecutor()
        let result = try executor.run(attempt.code)
        #expect(!result.stdout.contains("ESCAPED"), "\(attempt.name): \(result.stdout.prefix(300))")
        switch attempt.outcome {
        case .refused:
            #expect(result.stdout.contains("blocked"), "\(attempt.name): expected a refusal, got stdout \(result.stdout.prefix(300)) stderr \(result.stderr.prefix(300)) signal \(String(describing: result.signal))")
        case .killedByFilter:
            #expect(result.stdout.contains("calling"), "\(attempt.name): the attempt never ran: \(result.stderr.prefix(300))")
            #expect(result.signal == Int(SIGSYS), "\(attempt.name): expected SIGSYS, got \(String(describing: result.signal)) / exit \(String(describing: result.exitStatus))")
        case .timedOut:
            #expect(result.timedOut, "\(attempt.name): expected the wall clock to end it")
            #expect(result.signal == Int(SIGKILL))
        case .truncated:
            #expect(result.truncated)
            #expect(result.stdout.utf8.count <= 65_536)
        }
        let next = try executor.run("print('alive')")
        #expect(next.stdout == "alive\n", "after \(attempt.name) the executor must serve the next call")
        #expect(next.exitStatus == 0)
    }

    @Test("a listener on the host's loopback and a host file stay out of reach; a host process cannot be signalled")
    func hostResources() throws {
        // A TCP listener the jail would reach were it on the host's network.
        let listener = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(listener) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        _ = withUnsafePointer(to: &address) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(listener, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) } }
        listen(listener, 4)
        var bound = sockaddr_in()
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &bound) { $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(listener, $0, &length) } }
        let port = Int(UInt16(bigEndian: bound.sin_port))
        // A secret on the host, like the master key.
        let directory = "/var/tmp/oneo-escape-\(UInt32.random(in: 0 ... .max))"
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        try Data("master-key-material".utf8).write(to: URL(fileURLWithPath: directory + "/master.key"))
        // A host process of the same uid the jail's processes have.
        let sleeper = Process()
        sleeper.executableURL = URL(fileURLWithPath: "/usr/bin/sleep")
        sleeper.arguments = ["60"]
        try sleeper.run()
        defer { sleeper.terminate() }

        let executor = try ToolExecutor()
        let result = try executor.run("""
            import socket, os
            for attempt in ("tcp", "key", "kill"):
                try:
                    if attempt == "tcp":
                        socket.create_connection(("127.0.0.1", \(port)), timeout=1)
                    elif attempt == "key":
                        print(open("\(directory)/master.key").read())
                    else:
                        os.kill(\(sleeper.processIdentifier), 9)
                    print("ESCAPED", attempt)
                except BaseException as e:
                    print("blocked", attempt, type(e).__name__)
            """)
        #expect(!result.stdout.contains("ESCAPED"), "\(result.stdout)")
        #expect(result.stdout.contains("blocked tcp") && result.stdout.contains("blocked key") && result.stdout.contains("blocked kill"), "\(result.stdout) \(result.stderr)")
        #expect(!result.stdout.contains("master-key-material"))
        #expect(sleeper.isRunning, "the host process was not killed")
        // Nothing connected to the listener.
        var flags = fcntl(listener, F_GETFL)
        flags |= O_NONBLOCK
        _ = fcntl(listener, F_SETFL, flags)
        #expect(accept(listener, nil, nil) < 0, "no connection reached the host's loopback")
    }

    @Test("no descriptor of the executor leaks in: only 0, 1, 2 and the report pipe are open, none a directory")
    func leakedDescriptors() throws {
        let executor = try ToolExecutor()
        let result = try executor.run("""
            import os, stat
            open_fds = []
            for fd in range(0, 1024):
                try:
                    mode = os.fstat(fd).st_mode
                    open_fds.append((fd, "dir" if stat.S_ISDIR(mode) else "fifo" if stat.S_ISFIFO(mode) else "other"))
                except OSError:
                    pass
            print(open_fds)
            """)
        #expect(result.stdout == "[(0, 'fifo'), (1, 'fifo'), (2, 'fifo'), (3, 'fifo')]\n", "\(result.stdout) \(result.stderr)")
    }

    @Test("hostile output files: symlinks, FIFOs, oversized and nested files are not reported; a regular file is, base64")
    func hostileArtifacts() throws {
        let executor = try ToolExecutor()
        let result = try executor.run("""
            import os
            os.symlink("/usr/bin/python3", "link.bin")
            os.mkfifo("pipe.txt")
            open("big.bin", "wb").write(b"x" * (2 << 20))
            os.makedirs("deep/" * 100, exist_ok=True)
            open("deep/inner.txt", "w").write("nested")
            open(".hidden", "w").write("dot")
            open("chart.png", "wb").write(b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00" * 16)
            print("written")
            """)
        #expect(result.stdout == "written\n", "\(result.stderr)")
        #expect(result.artifacts.map(\.name) == ["chart.png"], "\(result.artifacts.map(\.name))")
        #expect(result.artifacts.first?.mediaType == "image/png")
        #expect(result.artifacts.first?.size == 24)
        #expect(Data(base64Encoded: result.artifacts.first?.data ?? "")?.prefix(4) == Data([0x89, 0x50, 0x4E, 0x47]))
    }

    @Test("no process of the jail's uid is left on the host after a fork bomb and a timeout")
    func noLeftovers() throws {
        let executor = try ToolExecutor(pool: 0)
        let result = try executor.run("import os\nfor _ in range(30):\n    if os.fork() == 0:\n        import time\n        time.sleep(60)\nimport time\ntime.sleep(60)\n")
        #expect(result.timedOut)
        // The jail is dead, so no new process of its uid can start: wait for those there are.
        let left = Waiting.forExit(of: Self.processes(ofUID: ToolExecutor.sandboxUID), within: 5)
        #expect(left.isEmpty, "processes of uid \(ToolExecutor.sandboxUID) still alive: \(left)")
        #expect(Self.processes(ofUID: ToolExecutor.sandboxUID).isEmpty)
    }

    /// Pids on the host whose real uid is `uid`.
    static func processes(ofUID uid: Int) -> [Int32] {
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: "/proc") else { return [] }
        return entries.compactMap { entry -> Int32? in
            guard let pid = Int32(entry), let status = try? String(contentsOfFile: "/proc/\(entry)/status", encoding: .utf8) else { return nil }
            let line = status.split(separator: "\n").first { $0.hasPrefix("Uid:") }
            let real = line?.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first
            return real.flatMap { Int($0) } == uid ? pid : nil
        }
    }
}
