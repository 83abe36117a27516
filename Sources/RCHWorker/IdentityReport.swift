import RCHCore
import RCHIdentity

/// The identity as `rch-worker identity` prints it (text for people, JSON for machines).
public struct ToolchainIdentityReport {
    public var identity: ToolchainIdentity
    public var executor: String

    public init(_ identity: ToolchainIdentity, provider: WorkerIdentityProvider) {
        self.identity = identity
        self.executor = provider.selection.executorClass
    }

    public var json: JSONObject {
        var o = identity.json.objectValue ?? JSONObject()
        o["executor"] = .string(executor)
        o["identity_sha256"] = .string(identity.identitySHA256.hex)
        return o
    }

    public var text: String {
        let i = identity
        var lines = [
            "executor: \(executor) (identity \(i.source.rawValue))",
            "Xcode \(i.xcodeVersion) (\(i.xcodeBuild)) at \(i.developerDir)",
            "macOS \(i.macosVersion) (\(i.macosBuild)), \(i.arch)",
        ]
        for r in i.runtimes {
            let devices = i.devices.filter { $0.runtime == r.identifier }.map(\.name)
            lines.append(
                "runtime \(r.name) (\(r.build)) \(r.identifier): \(devices.isEmpty ? "no devices" : devices.joined(separator: ", "))"
            )
        }
        for u in i.unavailableRuntimes { lines.append("unavailable runtime: \(u)") }
        lines.append("identity_sha256: \(i.identitySHA256.hex)")
        return lines.joined(separator: "\n") + "\n"
    }
}
