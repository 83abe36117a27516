import RCHCore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A detected identity remembered for a short time, so a submit can re-check identity without running
/// Apple's tools every time (`xcrun simctl list` alone takes a second on a real Mac).
///
/// Invariant: a cached identity is used only while (1) it is younger than `ttlSeconds` and (2) the
/// *fingerprint* of the files an Xcode, macOS or simulator change must touch is unchanged:
/// - the tools themselves as found on PATH (`xcode-select`, `xcodebuild`, `sw_vers`, `uname`, `xcrun`);
/// - `/var/db/xcode_select_link` (what `xcode-select -s` rewrites) and the PATH / DEVELOPER_DIR /
///   pinned developer directory strings;
/// - the Xcode bundle's `Contents/version.plist` (replaced by an Xcode update or reinstall);
/// - `/System/Library/CoreServices/SystemVersion.plist` (replaced by a macOS update);
/// - the simulator runtime and device-set directories (`/Library/Developer/CoreSimulator/Volumes`,
///   `…/Profiles/Runtimes`, `~/Library/Developer/CoreSimulator/Devices`), whose entries change when a
///   runtime or a device is added or removed.
/// Each path contributes `lstat` (device, inode, size, mtime, ctime) or "absent". A fingerprint costs a
/// dozen `lstat`s. The cache file (`<store>/cache/identity.json`) is replaced atomically; a file that is
/// unreadable or not exactly what we write is ignored (the identity is detected again).
public struct IdentityCache: Sendable {
    public var path: String
    public var ttlSeconds: Int64
    public var detector: ToolchainDetector

    public init(path: String, ttlSeconds: Int64, detector: ToolchainDetector) {
        self.path = path
        self.ttlSeconds = ttlSeconds
        self.detector = detector
    }

    /// The current identity: cached if still valid, else detected and remembered.
    public func current(now: Int64 = Timestamp.nowNanos()) throws -> ToolchainIdentity {
        if let cached = load(now: now) { return cached }
        return try refresh(now: now)
    }

    /// Detects now and remembers the result.
    @discardableResult
    public func refresh(now: Int64 = Timestamp.nowNanos()) throws -> ToolchainIdentity {
        let before = fingerprint(developerDir: nil)
        let identity = try detector.detect()
        // Remember it only if nothing moved while the tools ran.
        if before == fingerprint(developerDir: nil) {
            let record = JSONValue.obj([
                "schema_id": .string("rch-xcode/identity_cache@2"),
                "fingerprint": .string(fingerprint(developerDir: identity.developerDir).hex),
                "detected_at_ms": .int(now / 1_000_000),
                "identity": identity.json,
                "udids": identity.udidsJSON,
            ])
            try? Syscalls.makeDirectories(directoryOf(path))
            _ = try? DurableFile.write(record.canonicalBytes, to: path, replace: true, durable: false)
        }
        return identity
    }

    func load(now: Int64) -> ToolchainIdentity? {
        guard let bytes = try? DurableFile.read(path), let v = try? JSONParser().parse(bytes),
            let o = v.objectValue, o.count == 5, o["schema_id"]?.stringValue == "rch-xcode/identity_cache@2",
            let at = o["detected_at_ms"]?.intValue, let fp = o["fingerprint"]?.stringValue,
            let idJSON = o["identity"], var identity = try? ToolchainIdentity(json: idJSON),
            let udids = o["udids"].flatMap({ try? ToolchainIdentity.udids(json: $0) })
        else { return nil }
        identity.udids = udids
        let age = now / 1_000_000 - at
        guard age >= 0, age < ttlSeconds * 1000 else { return nil }
        guard fingerprint(developerDir: identity.developerDir).hex == fp else { return nil }
        return identity
    }

    /// SHA-256 over the watched paths' `lstat` facts (see the type's invariant).
    public func fingerprint(developerDir: String?) -> SHA256Digest {
        let env = detector.environment
        var lines: [String] = [
            "PATH=" + (env["PATH"] ?? ""), "DEVELOPER_DIR=" + (env["DEVELOPER_DIR"] ?? ""),
            "pinned=" + (detector.pinnedDeveloperDir ?? ""),
        ]
        var paths = ToolchainDetector.tools.map { ToolchainDetector.which($0, environment: env) ?? "absent:" + $0 }
        paths += [
            "/var/db/xcode_select_link", "/System/Library/CoreServices/SystemVersion.plist",
            "/Library/Developer/CoreSimulator/Volumes", "/Library/Developer/CoreSimulator/Profiles/Runtimes",
            (env["HOME"] ?? "/nonexistent") + "/Library/Developer/CoreSimulator/Devices",
        ]
        if let developerDir { paths.append(directoryOf(developerDir) + "/version.plist") }
        for p in paths {
            var st = stat()
            guard lstat(p, &st) == 0 else {
                lines.append(p + " absent")
                continue
            }
            let f = FileIdentity(st)
            lines.append("\(p) \(f.device) \(f.inode) \(f.size) \(f.mtimeNanos) \(f.ctimeNanos)")
        }
        return .of(lines.joined(separator: "\n").utf8)
    }
}
