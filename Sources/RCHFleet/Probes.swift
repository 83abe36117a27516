import Foundation
import RCHCore
import RCHHost
import RCHStore

/// Step 3 of the selection: a capability snapshot of each candidate, all at once (one thread each), so an
/// unreachable worker costs the connect timeout once, not once per worker.
enum Probes {
    struct Outcome {
        var worker: WorkerEntry
        var client: WorkerClient?
        var error: String?
        var failure: (any Error)?
        var durationMs: Int64
    }

    static func run(_ workers: [WorkerEntry], hostStore: LocalStore, connectSeconds: Int64?, force: Bool = false)
        -> [Outcome]
    {
        let results = Locked([Outcome]())
        let group = DispatchGroup()
        for w in workers {
            group.enter()
            Thread.detachNewThread {
                defer { group.leave() }
                let started = DispatchTime.now().uptimeNanoseconds
                var outcome = Outcome(worker: w, client: nil, error: nil, durationMs: 0)
                do {
                    let c = try WorkerClient(worker: w, hostStore: hostStore)
                    // The run's connect timeout, but never longer than the worker's own.
                    if let connectSeconds {
                        try c.setConnectTimeout(seconds: min(connectSeconds, w.connectTimeoutSeconds))
                    }
                    try c.negotiate(forceProbe: force)
                    outcome.client = c
                } catch {
                    outcome.error = "\(error)"
                    outcome.failure = error
                }
                outcome.durationMs = Int64((DispatchTime.now().uptimeNanoseconds - started) / 1_000_000)
                results.mutate { $0.append(outcome) }
            }
        }
        group.wait()
        // In inventory order, whatever order the threads finished in.
        let done = results.value
        return workers.compactMap { w in done.first { $0.worker.name == w.name } }
    }
}

/// A value shared between threads behind a lock.
final class Locked<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T

    init(_ v: T) { stored = v }

    var value: T { lock.withLock { stored } }

    func mutate(_ f: (inout T) -> Void) { lock.withLock { f(&stored) } }
}
