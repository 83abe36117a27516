import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One measured run of a command: wall time and the peak RSS of its process tree.
struct Sample {
    var seconds: Double
    var maxRSSKiB: Int
}

enum Measure {
    /// Runs `argv` (stdout/stderr to /dev/null unless `quiet` is false; stdout to the file `stdout` if
    /// given) and measures it with wait4.
    static func run(_ argv: [String], cwd: String? = nil, quiet: Bool = true, stdout: String? = nil) throws -> Sample {
        #if canImport(Darwin)
            var fa: posix_spawn_file_actions_t? = nil
        #else
            var fa = posix_spawn_file_actions_t()
        #endif
        posix_spawn_file_actions_init(&fa)
        defer { posix_spawn_file_actions_destroy(&fa) }
        if quiet {
            posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0)
            posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0)
        }
        if let stdout { posix_spawn_file_actions_addopen(&fa, 1, stdout, O_WRONLY | O_CREAT | O_TRUNC, 0o644) }
        let full = cwd.map { ["/bin/sh", "-c", "cd \"$0\" && exec \"$@\"", $0] + argv } ?? argv
        var cargs = full.map { strdup($0) } + [nil]
        defer { for p in cargs { free(p) } }
        var pid: pid_t = 0
        let start = DispatchTime.now().uptimeNanoseconds
        let rc = posix_spawnp(&pid, full[0], &fa, nil, &cargs, environ)
        guard rc == 0 else { throw BenchError("cannot start \(full[0]): \(String(cString: strerror(rc)))") }
        var status: Int32 = 0
        var usage = rusage()
        while wait4(pid, &status, 0, &usage) < 0 && errno == EINTR {}
        let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        guard status == 0 else { throw BenchError("\(argv.joined(separator: " ")) failed with status \(status)") }
        #if canImport(Darwin)
            let rss = Int(usage.ru_maxrss) / 1024
        #else
            let rss = Int(usage.ru_maxrss)
        #endif
        return Sample(seconds: elapsed, maxRSSKiB: rss)
    }

    /// Median of `runs` samples after `warmup` unmeasured runs; `prepare` runs before every one, then
    /// `sync` (untimed), so that no run pays for the write-back of the previous one's dirty pages.
    static func median(runs: Int, warmup: Int = 1, prepare: () throws -> Void = {}, _ body: () throws -> Sample) throws
        -> Sample
    {
        for _ in 0..<warmup {
            try prepare()
            sync()
            _ = try body()
        }
        var samples: [Sample] = []
        for _ in 0..<runs {
            try prepare()
            sync()
            samples.append(try body())
        }
        let times = samples.map(\.seconds).sorted()
        return Sample(seconds: times[times.count / 2], maxRSSKiB: samples.map(\.maxRSSKiB).max() ?? 0)
    }
}

struct BenchError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}

func format(_ s: Double) -> String { String(format: "%8.1f ms", s * 1000) }
func formatRatio(_ r: Double) -> String { String(format: "%.3f", r) }

/// Bytes rsync moved, from its `--stats` output: total sent + total received (-1 if either is missing).
func rsyncBytes(_ out: String) -> Int64 {
    func stat(_ label: String) -> Int64? {
        guard let line = out.split(separator: "\n").first(where: { $0.hasPrefix(label) }) else { return nil }
        return Int64(
            line.dropFirst(label.count).split(separator: " ").first?.replacingOccurrences(of: ",", with: "") ?? "")
    }
    guard let sent = stat("Total bytes sent: "), let received = stat("Total bytes received: ") else { return -1 }
    return sent + received
}
