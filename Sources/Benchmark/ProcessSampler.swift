import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The kinds of process a run is made of, as the report groups them.
public enum ProcessKind: String, CaseIterable, Sendable, Codable {
    case supervisor, api, qmgr, processor, postgres, redis, simulator
}

/// CPU time and peak memory of a process tree, read from `/proc` (Linux).
struct ProcessSampler {
    struct Sample {
        /// CPU seconds (user + system) per kind, summed over the kind's live processes.
        var cpuSeconds: [ProcessKind: Double] = [:]
        /// Largest peak RSS (VmHWM) of one process of each kind, in MiB.
        var peakRSSMiB: [ProcessKind: Double] = [:]
        /// Largest current RSS (VmRSS) of one process of each kind, in MiB.
        var currentRSSMiB: [ProcessKind: Double] = [:]
        /// Largest private memory (USS: what one more such process costs) of each kind, in MiB.
        var privateMiB: [ProcessKind: Double] = [:]
        var processCount: [ProcessKind: Int] = [:]
    }

    let supervisor: Int32
    let simulator: Int32

    func sample() -> Sample {
        let table = Self.processTable()
        var children: [Int32: [Int32]] = [:]
        for (pid, entry) in table { children[entry.parent, default: []].append(pid) }
        var sample = Sample()
        func visit(_ pid: Int32, inherited: ProcessKind?) {
            guard let entry = table[pid] else { return }
            let kind = Self.kind(of: entry, inherited: inherited)
            if let kind {
                sample.cpuSeconds[kind, default: 0] += entry.cpuSeconds
                sample.peakRSSMiB[kind] = max(sample.peakRSSMiB[kind] ?? 0, Self.memoryMiB(pid, "VmHWM:"))
                sample.currentRSSMiB[kind] = max(sample.currentRSSMiB[kind] ?? 0, Self.memoryMiB(pid, "VmRSS:"))
                sample.privateMiB[kind] = max(sample.privateMiB[kind] ?? 0, Self.privateMiB(pid))
                sample.processCount[kind, default: 0] += 1
            }
            for child in children[pid] ?? [] { visit(child, inherited: kind == .postgres ? .postgres : nil) }
        }
        visit(self.supervisor, inherited: .supervisor)
        visit(self.simulator, inherited: .simulator)
        return sample
    }

    private struct Entry {
        let parent: Int32
        let command: [String]
        let cpuSeconds: Double
    }

    private static func kind(of entry: Entry, inherited: ProcessKind?) -> ProcessKind? {
        if inherited == .supervisor || inherited == .simulator { return inherited }
        let program = entry.command.first.map { ($0 as NSString).lastPathComponent } ?? ""
        if inherited == .postgres || program.hasPrefix("postgres") || entry.command.contains(where: { $0.hasSuffix("/postgres") }) { return .postgres }
        // Redis rewrites its argv into one string: "/usr/bin/redis-server unixsocket:…".
        if entry.command.first?.contains("redis-server") == true { return .redis }
        if entry.command.count > 1, entry.command[1] == "api" { return .api }
        if entry.command.count > 1, entry.command[1] == "processor" { return .processor }
        if entry.command.count > 1, entry.command[1] == "qmgr" { return .qmgr }
        return nil
    }

    private static func processTable() -> [Int32: Entry] {
        let ticks = Double(sysconf(Int32(_SC_CLK_TCK)))
        var table: [Int32: Entry] = [:]
        for name in (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? [] {
            guard let pid = Int32(name), let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
                let close = stat.lastIndex(of: ")")
            else { continue }
            // Fields after the command name: state, ppid, ..., utime (14th field) and stime (15th).
            let fields = stat[stat.index(after: close)...].split(separator: " ")
            guard fields.count > 13, let parent = Int32(fields[1]), let user = Double(fields[11]), let system = Double(fields[12]) else { continue }
            let command = ((try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data())
                .split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            table[pid] = Entry(parent: parent, command: command, cpuSeconds: (user + system) / ticks)
        }
        return table
    }

    /// Private_Clean + Private_Dirty from smaps_rollup: pages no other process shares.
    private static func privateMiB(_ pid: Int32) -> Double {
        guard let rollup = try? String(contentsOfFile: "/proc/\(pid)/smaps_rollup", encoding: .utf8) else { return 0 }
        var kilobytes = 0.0
        for line in rollup.split(separator: "\n") where line.hasPrefix("Private_Clean:") || line.hasPrefix("Private_Dirty:") {
            kilobytes += Double(line.split(separator: " ").dropFirst().first ?? "") ?? 0
        }
        return kilobytes / 1024
    }

    private static func memoryMiB(_ pid: Int32, _ field: String) -> Double {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = status.split(separator: "\n").first(where: { $0.hasPrefix(field) }),
            let kilobytes = Double(line.split(separator: " ").dropFirst().first ?? "")
        else { return 0 }
        return kilobytes / 1024
    }
}
