import ArgumentParser
import Foundation
import RCHCLISupport
import RCHCore
import RCHFleet
import RCHHost
import RCHRun
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What `run` and `verify` share: where artifacts go, the profile, fetching, output, signals.
struct RunFlags: ParsableArguments {
    @Option(help: "Artifact profile: minimal or rich (default: [artifacts] profile, else minimal).") var profile:
        String?
    @Option(name: .customLong("artifacts"), help: "Host artifact root (default ~/.local/share/rch/artifacts/xcode).")
    var artifactRoot: String?
    @Flag(name: .customLong("no-fetch"), help: "Do not fetch the artifacts.") var noFetch = false
    @OptionGroup var out: OutputOptions

    func validate() throws {
        if let profile, ArtifactProfile(rawValue: profile) == nil {
            throw ValidationError("--profile must be minimal or rich")
        }
    }

    var root: String { artifactRoot ?? HostRetention.defaultArtifactRoot }

    /// Options wired to the terminal: log on stderr, notices, "waiting for a slot" on a terminal, signals.
    func options() -> RunOptions {
        RunSignals.install()
        var o = RunOptions()
        o.profile = profile.flatMap(ArtifactProfile.init(rawValue:))
        o.fetch = !noFetch
        o.cancelRequested = { RunSignals.requested }
        if !out.quiet && !out.json { o.onLog = { Console.shared.write($0) } }
        o.onNotice = { Console.shared.notice($0) }
        o.onWaiting = { msg in
            if isatty(2) == 1 { Console.shared.notice(msg) }
        }
        o.onPlanned = { plan in
            let steps = plan.steps.map { "\($0.action) \($0.jobID)\($0.rejected != nil ? " (rejected)" : "")" }.joined(
                separator: ", ")
            Console.shared.notice("run \(plan.runID) on \(plan.worker): \(steps)")
        }
        return o
    }

    func report(_ r: RunCoordinator.Result) {
        if out.json {
            printJSON(r.json)
            return
        }
        print("run \(r.plan.runID)\(r.resumed ? " (resumed)" : ""): \(r.status), exit \(r.exitCode) — \(r.directory)")
        for o in r.outcomes {
            var line = "  \(o.index) \(o.action) \(o.jobID): \(o.status.rawValue)"
            if o.cached { line += " (cache hit: cached_from_job_id \(o.cachedFromJobID ?? "?"))" }
            if !o.message.isEmpty { line += " — \(o.message)" }
            print(line)
            if let r = o.rekeyed { print("    re-keyed: \(r)") }
        }
    }
}

/// The repository root for `path` (walking up like git), announced when it is not `path` itself.
enum RepoRootNotice {
    static func root(_ path: String) throws -> String {
        let root = try RepoPath.root(from: path)
        if root != RepoPath.absolute(path) {
            Console.shared.notice("using repository root \(root)")
        }
        return root
    }
}

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run one xcodebuild job on a worker: push, submit, follow, fetch and verify (a run of one step).",
        discussion: """
            Example: rch-xcode run . -- build -scheme App -destination 'platform=iOS Simulator,name=iPhone 16'
            Without -destination the repository's [destination] value is used. A cached result for the same \
            job_key and a sufficient profile is served at once (cached_from_job_id). Ctrl-C cancels the job on \
            the worker (exit 80). Exits with the job's exit_code (0, 50 XCODEBUILD, 80 CANCELLED, …).
            """)

    @Argument(help: "Repository root.") var path: String = "."
    @Argument(parsing: .postTerminator, help: "xcodebuild arguments (after --).") var xcodebuild: [String] = []
    @OptionGroup var flags: RunFlags
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        if xcodebuild.isEmpty { throw ValidationError("give the xcodebuild arguments after --") }
    }

    func run() throws {
        var exit: Int32 = 0
        try runReportingFailures(flags.out) {
            let root = try RepoRootNotice.root(path)
            let options = flags.options()
            let (client, selection) = try workerOptions.choose(root: root, steps: [xcodebuild], options: options)
            let coordinator = RunCoordinator(client: client, artifactRoot: flags.root, options: options)
            coordinator.selection = selection
            let r = try coordinator.start(root: root, steps: [xcodebuild])
            flags.report(r)
            exit = r.exitCode
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Run the repository's verification (build, then test) on a worker as one resumable run.",
        discussion: """
            The steps are [verify] actions of .rch/xcode.toml (default build, test) with its scheme, configuration \
            and [destination]; flags override them. Run files (run_plan, run_state, run_summary, run_index) are \
            written under <artifact root>/<run_id>/ before anything runs. Ctrl-C cancels the running step on the \
            worker (exit 80); a run whose host process died is resumed (same job ids) by the next verify of the \
            same repository, or explicitly with --resume RUN_ID. Exits with run_summary's exit_code.
            """)

    @Argument(help: "Repository root.") var path: String = "."
    @Option(
        name: .customLong("action"), help: "A step (build or test); repeat for several (default: [verify] actions).")
    var actions: [String] = []
    @Option(help: "The scheme (default: [verify] scheme).") var scheme: String?
    @Option(help: "The build configuration (default: [verify] configuration).") var configuration: String?
    @Option(help: "An xcodebuild -destination (default: [destination] value).") var destination: String?
    @Flag(name: .customLong("continue-on-failure"), help: "Run every step even after one failed.")
    var continueOnFailure = false
    @Option(help: "Resume an interrupted run by its id.") var resume: String?
    @Flag(name: .customLong("no-resume"), help: "Start a new run even if an interrupted one of this repository exists.")
    var noResume = false
    @Argument(parsing: .postTerminator, help: "Extra xcodebuild arguments (after --), added to every step.") var extra:
        [String] = []
    @OptionGroup var flags: RunFlags
    @OptionGroup var workerOptions: WorkerOptions

    func validate() throws {
        for a in actions where a != "build" && a != "test" {
            throw ValidationError("--action must be build or test, not '\(a)'")
        }
        if let resume, !Identifier.isValid(resume, .runID) {
            throw ValidationError(IdentifierError(kind: .runID, value: resume).description)
        }
    }

    func run() throws {
        var exit: Int32 = 0
        try runReportingFailures(flags.out) {
            var options = flags.options()
            options.continueOnFailure = continueOnFailure
            let root = try RepoRootNotice.root(path)
            // A run never switches worker: a resumed run goes to the worker it was planned on.
            var resuming = resume
            if resuming == nil, !noResume,
                let found = RunWorkerChoice.interruptedRun(root: root, artifactRoot: flags.root),
                workerOptions.worker == nil || workerOptions.worker == found.worker
            {
                options.onNotice?("resuming interrupted run \(found.runID) (use --no-resume to start a new one)")
                resuming = found.runID
            }
            var workers = workerOptions
            if let resuming, workers.worker == nil {
                workers.worker = try RunWorkerChoice.plannedWorker(runID: resuming, artifactRoot: flags.root)
            }
            let r: RunCoordinator.Result
            if let resuming {
                let coordinator = RunCoordinator(
                    client: try workers.client(), artifactRoot: flags.root, options: options)
                r = try coordinator.resume(runID: resuming)
            } else {
                let steps = try VerifySteps(
                    root: root, actions: actions, scheme: scheme, configuration: configuration,
                    destination: destination, extra: extra
                ).argvs()
                let (client, selection) = try workers.choose(root: root, steps: steps, options: options)
                let coordinator = RunCoordinator(client: client, artifactRoot: flags.root, options: options)
                coordinator.selection = selection
                r = try coordinator.start(root: root, steps: steps)
            }
            flags.report(r)
            exit = r.exitCode
        }
        if exit != 0 { throw ExitCode(exit) }
    }
}
