import ArgumentParser
import Foundation
import RCHCore
import RCHJob

struct JCSBench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "jcs",
        abstract: "Parse, validate, canonicalise and hash a ~1 MB job_key_inputs document (target < 10 ms).")

    @Option(help: "Measured repetitions (median reported).") var runs: Int = 21
    @Option(help: "Number of -only-testing entries (15,600 gives about 1 MiB).") var entries: Int = 15_600

    func run() throws {
        var argv = ["test", "-destination", "platform=iOS Simulator,name=iPhone 16,OS=18.2"]
        argv += (0..<entries).map {
            String(format: "-only-testing:AppTests/Feature%05dTests/testBehaviour%05dWorks", $0, $0)
        }
        argv += ["-scheme", "App"]
        let doc: JSONValue = .obj([
            "source_sha256": .string(String(repeating: "ab", count: 32)),
            "sanitized_argv": .array(argv.map { .string($0) }),
            "toolchain": .obj([
                "xcode_build": .string("16C5032a"),
                "developer_dir": .string("/Applications/Xcode.app/Contents/Developer"),
                "macos_version": .string("15.2"), "macos_build": .string("24C101"), "arch": .string("arm64"),
            ]),
            "destination": .obj([
                "platform": .string("iOS Simulator"), "name": .string("iPhone 16"), "os_version": .string("18.2"),
                "provisioning": .string("existing"),
                "sim_runtime_identifier": .string("com.apple.CoreSimulator.SimRuntime.iOS-18-2"),
                "sim_runtime_build": .string("22C150"),
                "device_type_identifier": .string("com.apple.CoreSimulator.SimDeviceType.iPhone-16"),
            ]),
        ])
        let text = doc.canonicalBytes
        var times: [Double] = []
        var key = SHA256Digest.empty
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let inputs = try JobKeyInputs(json: try JSONParser().parse(text))
            key = inputs.jobKey
            times.append(Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6)
        }
        times.sort()
        print(
            "job_key_inputs of \(text.count) bytes: parse + validate + canonicalise + SHA-256, median \(String(format: "%.2f", times[times.count / 2])) ms (min \(String(format: "%.2f", times[0])) ms) over \(runs) runs; target < 10 ms"
        )
        print("job_key \(key.hex)")
    }
}
