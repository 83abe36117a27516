import Foundation
import RCHCore
import RCHHost

/// A kept candidate and, in adaptive mode, what its `affinity` call said.
struct Ranked {
    var client: WorkerClient
    var keys: [SHA256Digest]
    /// The live metrics (nil: not asked — deterministic mode — or not answered).
    var metrics: JSONObject?
    var metricsError: String?

    var freeSlots: Int64 { metrics?["free_slots"]?.intValue ?? 0 }
    /// 2: every step's result is cached; 1: the source is there; 0: neither.
    var affinity: Int {
        guard let m = metrics else { return 0 }
        let results = m["results"]?.objectValue
        if !keys.isEmpty, keys.allSatisfy({ results?[$0.hex]?.boolValue == true }) { return 2 }
        return m["source_present"]?.boolValue == true ? 1 : 0
    }
    var load: Double {
        guard case .double(let d) = metrics?["load_average_1m"] ?? .null else {
            return Double(metrics?["load_average_1m"]?.intValue ?? 0)
        }
        return d
    }
    var diskFree: Int64 { metrics?["disk_free_bytes"]?.intValue ?? 0 }

    /// The total order of step 5 (see ``WorkerSelector``).
    func precedes(_ o: Ranked, adaptive: Bool) -> Bool {
        let a = client.worker
        let b = o.client.worker
        if a.priority != b.priority { return a.priority > b.priority }
        if adaptive {
            if (metrics != nil) != (o.metrics != nil) { return metrics != nil }
            if (freeSlots > 0) != (o.freeSlots > 0) { return freeSlots > 0 }
            if affinity != o.affinity { return affinity > o.affinity }
            if freeSlots != o.freeSlots { return freeSlots > o.freeSlots }
            if load != o.load { return load < o.load }
            if diskFree != o.diskFree { return diskFree > o.diskFree }
        }
        return a.name.utf8.lexicographicallyPrecedes(b.name.utf8)
    }

    /// Why it ranks where it does, in words.
    var why: String {
        var parts = ["priority \(client.worker.priority)"]
        if let metricsError { parts.append("no metrics (\(metricsError))") }
        if metrics != nil {
            parts.append("\(freeSlots) free slot(s)")
            parts.append(["nothing cached", "source present", "result cached"][affinity])
        }
        return parts.joined(separator: ", ")
    }

    var metricsJSON: JSONValue {
        guard var m = metrics else { return metricsError.map { .obj(["error": .string($0)]) } ?? .null }
        m["affinity"] = .string(["none", "source", "result"][affinity])
        return .object(m)
    }
}

/// Adaptive mode: one `affinity` call per candidate, all at once, each bounded by a timeout (a worker that
/// does not answer in time, or lacks the feature, keeps no metrics and ranks after those that answered).
enum Affinity {
    static func measure(_ ranked: inout [Ranked], job: WorkerSelector.Job, timeoutSeconds: Double) {
        let answers = Locked([String: Result<JSONObject, SelectionDrop>]())
        let group = DispatchGroup()
        for r in ranked {
            let name = r.client.worker.name
            guard r.client.has("affinity") else {
                answers.mutate { $0[name] = .failure(.init("the worker lacks the affinity feature")) }
                continue
            }
            group.enter()
            nonisolated(unsafe) let client = r.client
            let keys = r.keys
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                let answer: Result<JSONObject, SelectionDrop>
                do {
                    answer = .success(
                        try client.affinity(
                            source: job.sourceSHA256, jobKeys: keys, namespace: job.namespace, profile: job.profile))
                } catch {
                    answer = .failure(.init("\(error)"))
                }
                answers.mutate { if $0[name] == nil { $0[name] = answer } }
                done.signal()
            }
            Thread.detachNewThread {
                if done.wait(timeout: .now() + timeoutSeconds) == .timedOut {
                    answers.mutate {
                        if $0[name] == nil { $0[name] = .failure(.init("no answer in \(timeoutSeconds) s")) }
                    }
                }
                group.leave()
            }
        }
        group.wait()
        let all = answers.value
        for i in ranked.indices {
            switch all[ranked[i].client.worker.name] {
            case .success(let m): ranked[i].metrics = m
            case .failure(let e): ranked[i].metricsError = e.reason
            case nil: ranked[i].metricsError = "not asked"
            }
        }
    }
}
