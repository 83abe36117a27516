import RCHCore
import RCHIdentity

/// `xcrun` as found on a job's PATH, run with the job's environment and a 120 s bound per call (the rich
/// files' `xcresulttool`, the ephemeral simulators' `simctl`).
struct Xcrun {
    let path: String
    let environment: [String: String]

    init?(environment: [String: String]) {
        guard let x = ToolchainDetector.which("xcrun", environment: environment) else { return nil }
        path = x
        self.environment = environment
    }

    /// Runs `xcrun ARGS`: whether it exited 0, its stdout and stderr.
    func run(_ args: [String]) -> (ok: Bool, out: String, err: String) {
        guard let r = try? Spawn.run(path, args, environment: environment, timeoutSeconds: 120) else {
            return (false, "", "xcrun \(args.prefix(2).joined(separator: " ")) did not finish")
        }
        if case .code(0) = r.exit { return (true, r.stdout, r.stderr) }
        return (false, r.stdout, r.stderr)
    }
}
