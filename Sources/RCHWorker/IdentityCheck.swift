import RCHCore
import RCHIdentity
import RCHJob

/// The re-check on every submit: does the job's `toolchain` and `destination` identity (what its
/// `job_key` binds) describe this worker *now*?
///
/// Compared: `xcode_build`, `developer_dir`, `macos_version`, `macos_build`, `arch`; for a simulator
/// destination, an available runtime with the job's `sim_runtime_identifier`, `sim_runtime_build` and
/// version `os_version`, and an available device of that runtime with the job's name and device type.
/// Any difference is a mismatch: the job is refused (`WORKER_INCOMPATIBLE`/`TOOLCHAIN_CHANGED`) before
/// its key is looked up, so a stale key can never produce a cache hit.
public enum IdentityCheck {
    public struct Mismatch: Sendable, Equatable {
        public var field: String
        public var requested: String
        public var current: String

        public var json: JSONValue {
            .obj(["field": .string(field), "requested": .string(requested), "current": .string(current)])
        }
    }

    public static func mismatches(_ inputs: JobKeyInputs, _ id: ToolchainIdentity) -> [Mismatch] {
        var out: [Mismatch] = []
        let t = inputs.toolchain
        for (field, requested, current) in [
            ("toolchain.xcode_build", t.xcodeBuild, id.xcodeBuild),
            ("toolchain.developer_dir", t.developerDir, id.developerDir),
            ("toolchain.macos_version", t.macosVersion, id.macosVersion),
            ("toolchain.macos_build", t.macosBuild, id.macosBuild),
            ("toolchain.arch", t.arch, id.arch),
        ] where requested != current {
            out.append(Mismatch(field: field, requested: requested, current: current))
        }
        let d = inputs.destination
        guard d.isSimulator && !d.isGeneric else { return out }
        let runtimeID = d.simRuntimeIdentifier ?? ""
        guard let runtime = id.runtimes.first(where: { $0.identifier == runtimeID }) else {
            let available = id.runtimes.map(\.identifier).joined(separator: ", ")
            out.append(
                Mismatch(
                    field: "destination.sim_runtime_identifier", requested: runtimeID,
                    current: available.isEmpty ? "none" : available))
            return out
        }
        if runtime.build != (d.simRuntimeBuild ?? "") {
            out.append(
                Mismatch(
                    field: "destination.sim_runtime_build", requested: d.simRuntimeBuild ?? "", current: runtime.build))
        }
        if runtime.version != d.osVersion {
            out.append(Mismatch(field: "destination.os_version", requested: d.osVersion, current: runtime.version))
        }
        let device = id.devices.first {
            $0.runtime == runtimeID && $0.name == d.name && $0.deviceType == (d.deviceTypeIdentifier ?? "")
        }
        if device == nil {
            out.append(
                Mismatch(
                    field: "destination.device", requested: "\(d.name) (\(d.deviceTypeIdentifier ?? "?"))",
                    current: id.devices.filter { $0.runtime == runtimeID }.map(\.name).joined(separator: ", ")))
        }
        return out
    }
}
