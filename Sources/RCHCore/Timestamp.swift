#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// RFC 3339 UTC timestamps (`2026-11-22T02:05:50.123Z`), the only time format artifacts use.
public enum Timestamp {
    public static func now() -> String { format(nanosSinceEpoch: nowNanos()) }

    public static func nowNanos() -> Int64 {
        var ts = timespec()
        clock_gettime(CLOCK_REALTIME, &ts)
        return Int64(ts.tv_sec) * 1_000_000_000 + Int64(ts.tv_nsec)
    }

    public static func format(nanosSinceEpoch n: Int64) -> String {
        var t = time_t(n / 1_000_000_000)
        var tm = tm()
        gmtime_r(&t, &tm)
        func pad(_ v: Int32, _ w: Int) -> String {
            let s = String(v)
            return String(repeating: "0", count: max(0, w - s.count)) + s
        }
        let ms = Int32((n % 1_000_000_000) / 1_000_000)
        return "\(pad(tm.tm_year + 1900, 4))-\(pad(tm.tm_mon + 1, 2))-\(pad(tm.tm_mday, 2))T"
            + "\(pad(tm.tm_hour, 2)):\(pad(tm.tm_min, 2)):\(pad(tm.tm_sec, 2)).\(pad(ms, 3))Z"
    }

    /// Whether `s` has the schemas' timestamp shape: `YYYY-MM-DDTHH:MM:SS[.fraction]Z`.
    public static func isValid(_ s: String) -> Bool {
        let b = Array(s.utf8)
        guard b.count >= 20, b.last == UInt8(ascii: "Z") else { return false }
        let shape = Array("dddd-dd-ddTdd:dd:dd".utf8)
        for (i, c) in shape.enumerated() {
            let ok = c == UInt8(ascii: "d") ? (b[i] >= 48 && b[i] <= 57) : b[i] == c
            if !ok { return false }
        }
        if b.count == 20 { return true }
        guard b[19] == UInt8(ascii: "."), b.count > 21 else { return false }
        return b[20..<(b.count - 1)].allSatisfy { $0 >= 48 && $0 <= 57 }
    }
}
