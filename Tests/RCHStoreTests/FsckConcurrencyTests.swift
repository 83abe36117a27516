import Foundation
import RCHCore
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

@Suite("fsck under load and the profile an entry claims")
struct FsckConcurrencyTests {
    @Test("an entry edited from minimal to rich: lookups miss it (profile from its files), fsck reports it")
    func editedProfile() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let key = SHA256Digest.of(Array("k".utf8))
        try StoreFixtures.artifacts(d.sub("a"), action: "build", rich: false, jobKey: key)
        let results = ResultStore(store: store)
        _ = try results.record(d.sub("a"), jobKey: key, namespace: "app", producer: .recording)
        let path = results.entryPath(namespace: "app", jobKey: key)
        var o = try JSONParser().parse(try DurableFile.read(path)).objectValue!
        o["artifact_profile"] = .string("rich")
        // Written as the store writes entries (JCS and a newline): only the claimed profile is wrong.
        _ = try DurableFile.write(JSONValue.object(o).canonicalBytes + [10], to: path, replace: true)
        let l = results.lookup(jobKey: key, namespace: "app", profile: .rich, executorClass: "recording")
        guard case .miss(let why) = l else {
            Issue.record("an edited entry served rich: \(l)")
            return
        }
        #expect(why.contains("artifact_profile"))
        let r = try Fsck(store: store).run()
        #expect(
            r.brokenEntries.count == 1 && r.brokenEntries[0].reason.contains("artifact_profile"), "\(r.brokenEntries)")
    }

    @Test("fsck and fsck --repair beside writers: no false 'missing', no healthy entry quarantined")
    func besideWriters() throws {
        let d = TempDir()
        let store = try LocalStore(root: d.sub("store"))
        let results = ResultStore(store: store)
        let count = 60
        for i in 0..<count {
            // Each result has its own big file, so every record publishes new blobs.
            try StoreFixtures.artifacts(d.sub("a\(i)"), action: "build", jobKey: .of(Array("k\(i)".utf8)))
            Tree(d.sub("a\(i)")).bytes("big.bin", (0..<(64 << 10)).map { UInt8(truncatingIfNeeded: $0 &* (i + 1)) })
        }
        let done = Box(false)
        let writerError = Box<String?>(nil)
        let base = d.path
        let writer = Thread {
            for i in 0..<count {
                do {
                    _ = try results.record(
                        base + "/a\(i)", jobKey: .of(Array("k\(i)".utf8)), namespace: "app", producer: .recording)
                } catch {
                    writerError.value = "\(error)"
                }
            }
            done.value = true
        }
        writer.start()
        var rounds = 0
        while !done.value || rounds < 2 {
            let readOnly = try Fsck(store: store).run()
            #expect(
                readOnly.brokenEntries.isEmpty, "read-only fsck beside a writer: \(readOnly.brokenEntries.prefix(3))")
            var fix = Fsck(store: store)
            fix.repair = true
            let repaired = try fix.run()
            #expect(repaired.quarantined.isEmpty, "quarantined healthy entries: \(repaired.quarantined.prefix(3))")
            rounds += 1
        }
        #expect(writerError.value == nil, "\(writerError.value ?? "")")
        #expect(rounds >= 2)
        for i in 0..<count {
            guard
                case .hit = results.lookup(
                    jobKey: .of(Array("k\(i)".utf8)), namespace: "app", profile: .minimal, executorClass: "recording")
            else {
                Issue.record("result \(i) is not served after the concurrent fsck runs")
                return
            }
        }
    }
}

/// A mutable value shared with a thread in tests.
final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T
    init(_ v: T) { stored = v }
    var value: T {
        get {
            lock.lock()
            defer { lock.unlock() }
            return stored
        }
        set {
            lock.lock()
            stored = newValue
            lock.unlock()
        }
    }
}
