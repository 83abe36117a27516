import RCHCore
import RCHFleet
import RCHHost
import RCHJob
import RCHStore

/// Which worker a run goes to when the command line names none (PLAN §17): the repository's requirements
/// and steps, handed to ``WorkerSelector``. An interrupted run of the repository is resumed on the worker
/// it was planned on — a run never switches worker.
public enum RunWorkerChoice {
    /// Selects a worker for `steps` of the repository at `root` from `inventory`.
    public static func select(
        root: String, steps: [[String]], inventory: [WorkerEntry], hostStore: LocalStore, options: RunOptions
    ) throws -> (client: WorkerClient, record: SelectionRecord) {
        let layers = try Config.layers(repo: root, flags: options.configFlags)
        let (config, _) = Config.redact(Config.merge(layers))
        let requirements = try FleetRequirements(config: config)
        let settings = try RunSettings(config: config)
        let destination = try DestinationConfig(config: config)
        let bundleOptions = try RepoBundleOptions.apply(config, to: options.bundleOptions)
        // The digest only (stat cache; nothing compressed): the job keys of the affinity question need it.
        let bundle = try HostBundler(store: hostStore).bundle(root: root, options: bundleOptions, compressed: false)
        var job = WorkerSelector.Job(
            argvs: steps.map { argv in
                !argv.contains("-destination") && destination.value != nil
                    ? argv + ["-destination", destination.value!] : argv
            }, sourceSHA256: bundle.sourceSHA256)
        job.provisioning = destination.provisioning
        job.pinned = destination.pinned && destination.value != nil
        job.namespace = config["cache"]?["namespace"]?.stringValue ?? "default"
        job.profile = options.profile?.rawValue ?? config["artifacts"]?["profile"]?.stringValue ?? "minimal"
        var selector = WorkerSelector(inventory: inventory, hostStore: hostStore, requirements: requirements)
        selector.connectSeconds = settings.connectSeconds
        return try selector.select(job)
    }

    /// The newest interrupted run of `root` (any worker) in `artifactRoot`: its id and worker.
    public static func interruptedRun(root: String, artifactRoot: String) -> (runID: String, worker: String)? {
        guard let names = try? Directory.list(artifactRoot) else { return nil }
        var best: (String, String, String)? = nil
        for name in names where Identifier.isValid(name, .runID) {
            let run = RunDirectory(artifactRoot: artifactRoot, runID: name)
            guard let plan = try? run.readPlan(), plan.repoRoot == root, let state = run.readState(),
                !state.state.isTerminal, !run.isLocked
            else { continue }
            if best == nil || plan.createdAt > best!.2 { best = (name, plan.worker, plan.createdAt) }
        }
        return best.map { ($0.0, $0.1) }
    }

    /// The worker a run was planned on (for `--resume RUN_ID` without `--worker`).
    public static func plannedWorker(runID: String, artifactRoot: String) throws -> String {
        try RunDirectory(artifactRoot: artifactRoot, runID: runID).readPlan().worker
    }
}
