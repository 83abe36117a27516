import Foundation
import RCHCore

/// The real Ceph RADOS Gateway the shared-tier tests use: `scripts/rgw start` on a fixed short directory
/// (`$RCH_TEST_RGW`, default `/tmp/rch-rgw`; `scripts/test` starts it before `swift test`, and a test run
/// without it starts it here — bootstrapping takes ~20 s once, a running one answers at once). Every test uses
/// its own key prefix in the one bucket, so tests run in parallel without seeing each other's objects.
public enum TestRGW {
    public struct Endpoint: Sendable {
        public var endpoint: String
        public var bucket: String
        public var region: String
        public var accessKey: String
        public var secretKey: String
        public var directory: String
    }

    public static let directory = ProcessInfo.processInfo.environment["RCH_TEST_RGW"] ?? "/tmp/rch-rgw"

    private static let started: Result<Endpoint, TestRGWError> = {
        do {
            let r = try script(["start", directory])
            guard r.exit == .code(0) else {
                return .failure(TestRGWError(message: "scripts/rgw start \(directory) failed: \(r.stderr)"))
            }
            return .success(try read())
        } catch {
            return .failure(TestRGWError(message: "scripts/rgw start \(directory): \(error)"))
        }
    }()

    /// The running gateway (started on first use).
    public static func shared() throws -> Endpoint { try started.get() }

    /// Parses `<dir>/env`.
    static func read() throws -> Endpoint {
        let text = try String(contentsOfFile: directory + "/env", encoding: .utf8)
        var v: [String: String] = [:]
        for line in text.split(separator: "\n") {
            let parts = line.split(separator: "=", maxSplits: 1).map(String.init)
            if parts.count == 2 { v[parts[0]] = parts[1] }
        }
        guard let e = v["RCH_S3_ENDPOINT"], let b = v["RCH_S3_BUCKET"], let r = v["RCH_S3_REGION"],
            let a = v["AWS_ACCESS_KEY_ID"], let s = v["AWS_SECRET_ACCESS_KEY"]
        else { throw TestRGWError(message: "\(directory)/env is incomplete") }
        return Endpoint(endpoint: e, bucket: b, region: r, accessKey: a, secretKey: s, directory: directory)
    }

    /// Starts (or finds running) a second gateway of the same cluster on `port`; returns its endpoint.
    public static func startGateway(_ port: Int) throws -> String {
        _ = try shared()
        let r = try script(["start-gateway", directory, String(port)])
        guard r.exit == .code(0) else { throw TestRGWError(message: "start-gateway \(port): \(r.stderr)") }
        return "http://127.0.0.1:\(port)"
    }

    public static func stopGateway(_ port: Int) throws {
        _ = try script(["stop-gateway", directory, String(port)])
    }

    /// scripts/rgw through files, not pipes: the daemons it starts must not hold a pipe of ours open.
    static func script(_ args: [String]) throws -> (exit: Spawn.Exit, stdout: String, stderr: String, seconds: Double) {
        try Spawn.run(TestPaths.packageRoot + "/scripts/rgw", args, timeoutSeconds: 300)
    }

    /// A key prefix no other test uses.
    public static func uniquePrefix(_ name: String) -> String {
        "t/\(name)-\(getpid())-\(UInt64.random(in: 0..<UInt64.max))/"
    }
}

public struct TestRGWError: Error, CustomStringConvertible {
    public var message: String
    public var description: String { message }
}
