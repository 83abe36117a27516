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
