import Foundation
import RCHCore
import RCHIdentity
import RCHJob

/// `destination.provisioning = "ephemeral"` on the xcodebuild backend (PLAN §13.4): a simulator made for one
/// job and deleted after it.
///
/// Protocol, all through `xcrun simctl` on the job's PATH (each call bounded by 120 s): (1) sweep — delete
/// every device named `rch-ephemeral-<job_id>` whose job is not active on this worker (what a crashed runner
/// left); (2) `create rch-ephemeral-<job_id> <device_type_identifier> <sim_runtime_identifier>` — its one
/// output line must be a UDID; (3) `boot <UDID>` (an "already booted" answer is fine); (4) xcodebuild runs with
/// `-destination id=<UDID>` (the key keeps the name/OS form: the UDID never enters it); (5) `delete <UDID>`
/// after the job — also after a failure, cancel or timeout; a failed delete sets `ephemeral_cleanup_failed`
/// in `summary.json` (the next sweep retries). The UDID is recorded in `destination.json`.
struct EphemeralSimulator {
    static let prefix = "rch-ephemeral-"

    let xcrun: Xcrun

    init?(environment: [String: String]) {
        guard let x = Xcrun(environment: environment) else { return nil }
        xcrun = x
    }

    func simctl(_ args: [String]) -> (ok: Bool, out: String, err: String) { xcrun.run(["simctl"] + args) }

    /// Deletes this worker's leftovers (devices named after a job that is not active); returns their UDIDs.
    func sweep(isActive: (String) -> Bool) -> [String] {
        let list = simctl(["list", "-j", "devices"])
        guard list.ok, let v = try? JSONParser().parse(Array(list.out.utf8)), let map = v["devices"]?.objectValue
        else { return [] }
        var deleted: [String] = []
        for (_, devices) in map.members {
            for d in devices.arrayValue ?? [] {
                guard let name = d["name"]?.stringValue, name.hasPrefix(Self.prefix),
                    let udid = d["udid"]?.stringValue, !isActive(String(name.dropFirst(Self.prefix.count)))
                else { continue }
                if simctl(["delete", udid]).ok { deleted.append(udid) }
            }
        }
        return deleted
    }

    /// Creates and boots the job's simulator; its UDID, or why it could not be made.
    func create(jobID: String, destination d: JobKeyInputs.Destination) -> Result<String, ProvisioningError> {
        guard let type = d.deviceTypeIdentifier, let runtime = d.simRuntimeIdentifier else {
            return .failure(.init("an ephemeral destination needs a simulator device type and runtime"))
        }
        let made = simctl(["create", Self.prefix + jobID, type, runtime])
        let udid = made.out.trimmingCharacters(in: .whitespacesAndNewlines)
        guard made.ok, ToolchainIdentity.DeviceUDID.isUDID(udid) else {
            return .failure(
                .init("`xcrun simctl create` failed: \(made.ok ? "it printed '\(udid.prefix(80))'" : made.err)"))
        }
        let boot = simctl(["boot", udid])
        if !boot.ok && !boot.err.contains("current state: Booted") {
            _ = simctl(["delete", udid])
            return .failure(.init("`xcrun simctl boot \(udid)` failed: \(boot.err.prefix(200))"))
        }
        return .success(udid)
    }

    func delete(_ udid: String) -> Bool { simctl(["delete", udid]).ok }

    /// The argv with its `-destination` value replaced by `id=<UDID>`.
    static func argv(_ argv: [String], udid: String) -> [String] {
        var a = argv
        if let i = a.firstIndex(of: "-destination"), i + 1 < a.count { a[i + 1] = "id=\(udid)" }
        return a
    }
}

struct ProvisioningError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}
