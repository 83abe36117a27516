import Foundation
import XcodeTreeGen

/// A recorded test job's artifact directory, shaped like the backend's (`XcodeTreeGen.makeResults` plus the
/// `summary.json` and `job.json` a cached result needs), made once per path.
enum ResultSet {
    static func make(at art: String, scale: Double, key: String, source: String) throws {
        guard !FileManager.default.fileExists(atPath: art) else { return }
        try XcodeTreeGen(seed: 7, scale: scale).makeResults(at: art)
        let common =
            "\"created_at\":\"2026-11-22T00:00:00.000Z\",\"run_id\":\"run_bench00001\",\"job_id\":\"job_bench00001\",\"job_key\":\"\(key)\""
        try Data(
            "{\"schema_version\":1,\"schema_id\":\"rch-xcode/summary@1\",\(common),\"status\":\"success\",\"exit_code\":0,\"human_summary\":\"ok\"}"
                .utf8
        ).write(to: URL(fileURLWithPath: art + "/summary.json"))
        try Data(
            "{\"schema_version\":1,\"schema_id\":\"rch-xcode/job@1\",\(common),\"action\":\"test\",\"job_key_inputs\":{\"source_sha256\":\"\(source)\"}}"
                .utf8
        ).write(to: URL(fileURLWithPath: art + "/job.json"))
    }
}

extension ResultSet {
    /// A real job's artifact directory (its JSON records) with a generated test result set laid over it.
    static func overlay(_ job: String, at art: String, scale: Double) throws {
        try FileManager.default.copyItem(atPath: job, toPath: art)
        try XcodeTreeGen(seed: 7, scale: scale).makeResults(at: art)
    }

    /// Changes every `1/fraction`-th regular file (in path order; the job's top-level JSON records excepted) in
    /// every byte (each XOR 0x5A: no block of it is left for a delta algorithm to find, while text stays as
    /// compressible as it was) — as a rebuild changes a product all over. Returns how many.
    static func rewrite(_ art: String, fraction: Double) throws -> Int {
        let step = max(1, Int((1 / fraction).rounded()))
        var paths: [String] = []
        let e = FileManager.default.enumerator(atPath: art)
        while let p = e?.nextObject() as? String {
            if e?.fileAttributes?[.type] as? FileAttributeType == .typeRegular, p.contains("/") || !p.hasSuffix(".json")
            {
                paths.append(p)
            }
        }
        paths.sort()
        var count = 0
        for (i, p) in paths.enumerated() where i % step == 0 {
            let url = URL(fileURLWithPath: art + "/" + p)
            try Data(try Data(contentsOf: url).map { $0 ^ 0x5A }).write(to: url)
            count += 1
        }
        return count
    }
}
