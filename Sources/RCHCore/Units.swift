/// `123`, `4K`, `500MiB`, `2G` … → bytes.
public func parseSize(_ s: String) -> UInt64? {
    let units: [(String, UInt64)] = [
        ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("K", 1 << 10), ("M", 1 << 20), ("G", 1 << 30), ("", 1),
    ]
    for (u, m) in units where s.hasSuffix(u) {
        if let n = UInt64(s.dropLast(u.count)) { return n * m }
    }
    return nil
}

/// `30d`, `12h`, `90m`, `3600s`, `3600` → seconds.
public func parseDuration(_ s: String) -> Int64? {
    let units: [(String, Int64)] = [("d", 86_400), ("h", 3600), ("m", 60), ("s", 1), ("", 1)]
    for (u, m) in units where s.hasSuffix(u) {
        if let n = Int64(s.dropLast(u.count)), n >= 0 { return n * m }
    }
    return nil
}
