import Foundation
import RCHCore
import RCHTestSupport
import Testing

@testable import RCHHost

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The next exchange's process started before its request is known (a push starts it while it bundles).
@Suite("Exchanges started early")
struct StartedExchangeTests {
    @Test("a started process is used by the next exchange, even after read_timeout; argv must match")
    func used() throws {
        let f = try LaneFixture(config: "read_timeout = \"1s\"", ssh: true)
        let c = try f.client()
        c.prestartNextExchange()
        #expect(c.transport.spare.isWaiting)
        usleep(2_500_000)  // longer than read_timeout: the header still may come (up to a minute)
        try c.negotiate(forceProbe: true)
        #expect(c.transport.spare.used == 1 && !c.transport.spare.isWaiting && c.protocolVersion == 1)
        // Started for another command line (the connect timeout changed): dropped, a new process is used.
        c.prestartNextExchange()
        try c.setConnectTimeout(seconds: 7)
        #expect(try c.hasSources([.of([1])]) == [false])
        #expect(c.transport.spare.used == 0)
        c.prestartNextExchange()
        c.transport.spare.drop()
        #expect(!c.transport.spare.isWaiting)
    }

    @Test("a worker given end of input without a byte exits at once, successfully, without a reply")
    func unused() throws {
        let f = try LaneFixture(config: "read_timeout = \"1s\"", ssh: false)
        let started = Timestamp.nowNanos()
        let r = try Sub.run(
            "/bin/sh", ["-c", "'\(f.workerExe)' rpc --store '\(f.workerStore)' --config '\(f.configPath)' </dev/null"])
        #expect(r.status == 0 && r.stdout.isEmpty && r.stderr.isEmpty, "\(r.status) \(r.stdout) \(r.stderr)")
        #expect(Timestamp.nowNanos() - started < 900_000_000)
        // One newline is a request, and a malformed one.
        let bad = try Sub.run(
            "/bin/sh",
            ["-c", "echo | '\(f.workerExe)' rpc --store '\(f.workerStore)' --config '\(f.configPath)'"])
        #expect(bad.status == 1 && bad.stdout.contains("INVALID_REQUEST"), "\(bad.stdout)")
    }
}
