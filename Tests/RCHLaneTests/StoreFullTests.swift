import Foundation
import RCHBundle
import RCHCore
import RCHHost
import RCHProtocol
import RCHRun
import RCHStore
import RCHTestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A worker store on a small tmpfs (the tests mount one; they need root, as CI runs).
@Suite(
    "A full disk: STORE_FULL with nothing partial, and the floor judged by the write at hand",
    .enabled(if: getuid() == 0, "mounting a tmpfs needs root"))
struct StoreFullTests {
    /// Mounts a tmpfs of `size` at the fixture's worker store.
    static func mountStore(_ f: LaneFixture, size: String) throws {
        try FileManager.default.createDirectory(atPath: f.workerStore, withIntermediateDirectories: true)
        let r = try Sub.run("/bin/mount", ["-t", "tmpfs", "-o", "size=\(size)", "tmpfs", f.workerStore])
        try #require(r.status == 0, "mount: \(r.stderr)")
    }

    static func unmount(_ f: LaneFixture) { _ = try? Sub.run("/bin/umount", ["-l", f.workerStore]) }

    /// A tree of `megabytes` of incompressible content.
    static func randomTree(_ f: LaneFixture, megabytes: Int) throws -> String {
        let root = f.dir.sub("random-repo")
        let t = Tree(root)
        for i in 0..<megabytes {
            t.bytes("data/blob\(i).bin", (0..<(1 << 20)).map { _ in UInt8.random(in: 0...255) })
        }
        t.file("App.swift", "print(1)\n")
        return root
    }

    /// Source entries of the store.
    static func sources(_ f: LaneFixture) -> [String] {
        ((FileManager.default.enumerator(atPath: f.workerStore + "/sources")?.allObjects as? [String]) ?? []).filter {
            $0.hasSuffix(".json")
        }.sorted()
    }

    /// Temp files, staging directories' contents and partial blobs left under the store.
    static func residue(_ f: LaneFixture) -> [String] {
        let e = FileManager.default.enumerator(atPath: f.workerStore)
        var out: [String] = []
        while let p = e?.nextObject() as? String {
            let name = (p as NSString).lastPathComponent
            if name.hasPrefix(".tmp-") || name.hasPrefix(".staging-") || name.hasPrefix(".part-") {
                if e?.fileAttributes?[.type] as? FileAttributeType != .typeDirectory { out.append(p) }
            }
        }
        return out
    }

    @Test("ENOSPC during an upload: STORE_FULL (host exit 30), nothing partial; after space is freed the push works")
    func diskFull() throws {
        let f = try LaneFixture(ssh: false)
        try Self.mountStore(f, size: "24m")
        defer { Self.unmount(f) }
        let root = try Self.randomTree(f, megabytes: 8)
        let filler = f.workerStore + "/filler.bin"
        try Data(count: 18 << 20).write(to: URL(fileURLWithPath: filler))
        do {
            _ = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
            Issue.record("the upload fitted on a full disk")
        } catch let e as RPCError {
            #expect(e.code == .storeFull, "\(e)")
            #expect(e.failureKind.exitCode == 30)
        }
        #expect(Self.residue(f).isEmpty, "left behind: \(Self.residue(f))")
        #expect(Self.sources(f).isEmpty)
        let cli = try Sub.run(
            TestPaths.executable("rch-xcode"),
            ["push", root, "--worker", "w", "--inventory", f.inventory, "--store", f.hostStore])
        #expect(cli.status == 30, "\(cli.stdout) \(cli.stderr)")
        unlink(filler)
        let pushed = try Pusher(client: try f.client()).push(root: root, options: BundleOptions())
        #expect(SourceStore(store: try LocalStore(root: f.workerStore)).has(pushed.sourceSHA256))
    }

    @Test("the free-space floor is judged against the write at hand, not a fixed 64 MiB reserve")
    func floor() throws {
        let f = try LaneFixture(ssh: false)
        try f.writeConfig("", minFree: "4MiB")
        try Self.mountStore(f, size: "40m")
        defer { Self.unmount(f) }
        let small = try f.tree(scale: 0.02)
        let r = try Pusher(client: try f.client()).push(root: small, options: BundleOptions())
        #expect(SourceStore(store: try LocalStore(root: f.workerStore)).has(r.sourceSHA256))
        // A write that would cross the floor is refused with STORE_FULL and leaves nothing.
        try Data(count: 30 << 20).write(to: URL(fileURLWithPath: f.workerStore + "/filler.bin"))
        let big = try Self.randomTree(f, megabytes: 4)
        let before = Self.sources(f)
        do {
            _ = try Pusher(client: try f.client()).push(root: big, options: BundleOptions())
            Issue.record("crossed the floor")
        } catch let e as RPCError {
            #expect(e.code == .storeFull && e.message.contains("floor"), "\(e)")
        }
        #expect(Self.residue(f).isEmpty, "left behind: \(Self.residue(f))")
        #expect(Self.sources(f) == before)
    }
}
