import RCHCore
import RCHShared
import RCHStore

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The worker's use of the shared tier (PLAN §18): nil without `[shared]`. Every call here is best effort —
/// the tier never fails a request or a job; its failures are counted and logged by ``TierHealth``.
public struct WorkerShared: Sendable {
    public let tier: SharedTier
    public let queue: PublishQueue

    /// The tier for `config`, or nil when `[shared]` is absent or cannot be set up (logged).
    public init?(store: LocalStore, config: WorkerConfig) {
        guard let shared = config.shared else { return nil }
        do {
            let worker = try JobRunner(store: store, config: config).identity()
            tier = try SharedTier(config: shared, store: store, worker: worker)
        } catch {
            TierHealth(store: store, retryAfterSeconds: shared.retryAfterSeconds).log(
                "shared tier not usable: \(error)")
            return nil
        }
        queue = PublishQueue(store: store)
    }

    /// Queues a publish (read-write mode only).
    public func enqueue(_ item: PublishQueue.Item) { Self.enqueue(item, store: tier.store, config: tier.config) }

    /// Queues a publish without setting up the tier (no key, no HTTP session): what every job and upload does.
    public static func enqueue(_ item: PublishQueue.Item, store: LocalStore, config: WorkerConfig) {
        guard let shared = config.shared else { return }
        enqueue(item, store: store, config: shared)
    }

    static func enqueue(_ item: PublishQueue.Item, store: LocalStore, config: SharedConfig) {
        guard config.mode == .readWrite else { return }
        do { try PublishQueue(store: store).enqueue(item) } catch {
            TierHealth(store: store, retryAfterSeconds: config.retryAfterSeconds).log(
                "could not queue \(item): \(error)")
        }
    }

    /// Starts `command` (`rch-worker shared drain …`) detached — own session, no inherited stdio — when a
    /// drainer is worth starting: read-write, something queued, the tier not backing off. Reads two small
    /// files; sets up no tier (this runs after every request). A drainer already running makes the new one
    /// exit at once.
    public static func startDrainer(_ command: [String], store: LocalStore, config: WorkerConfig) {
        guard let shared = config.shared, shared.mode == .readWrite, PublishQueue(store: store).count > 0,
            TierHealth(store: store, retryAfterSeconds: shared.retryAfterSeconds).available(), let exe = command.first
        else { return }
        let devnull = open("/dev/null", O_RDWR | O_CLOEXEC)
        guard devnull >= 0 else { return }
        defer { close(devnull) }
        _ = try? Spawn.start(
            exe, Array(command.dropFirst()), stdin: devnull, stdout: devnull, stderr: devnull, newSession: true)
    }
}
