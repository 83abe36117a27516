import Foundation

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// Stand-ins for Apple's tools on a PATH: `xcode-select`, `xcodebuild`, `sw_vers`, `uname`, `xcrun`, each
/// printing exactly what the real tool prints (formats in `AppleToolOutput`). `xcodebuild -version`
/// answers for the Xcode whose developer directory is in `DEVELOPER_DIR`; a build or test run records its
/// argv, DEVELOPER_DIR and working directory in `calls.log` and, for `test`, creates the result bundle.
/// Changing a property and calling ``write()`` again replaces every script (new inode and mtime), as an
/// Xcode or macOS update replaces files.
public final class FakeAppleTools {
    public struct Xcode {
        public var developerDir: String
        public var version: String
        public var build: String
        public init(developerDir: String, version: String, build: String) {
            self.developerDir = developerDir
            self.version = version
            self.build = build
        }
    }

    public let directory: String
    public var xcodes: [Xcode] = [
        Xcode(developerDir: "/Applications/Xcode.app/Contents/Developer", version: "16.2", build: "16C5032a"),
        Xcode(developerDir: "/Applications/Xcode-16.3.app/Contents/Developer", version: "16.3", build: "16E140"),
    ]
    public var selected = "/Applications/Xcode.app/Contents/Developer"
    public var macosVersion = "15.2"
    public var macosBuild = "24C101"
    public var arch = "arm64"
    public var simctlJSON = FakeAppleTools.simctlSample
    /// What `xcrun xcresulttool get test-results summary|tests` print (nil: the subcommand does not exist,
    /// as before Xcode 16 — then `get --format json [--id]` prints the legacy fixtures).
    public var xcresultSummary: String? = XCResultFixtures.summary
    public var xcresultTests: String? = XCResultFixtures.tests
    /// Overrides one tool's whole script (for malformed-output tests).
    public var overrides: [String: String] = [:]

    public init(directory: String) throws {
        self.directory = directory
        try write()
    }

    public var bin: String { directory + "/bin" }
    /// A PATH with the fakes first (and the system's tools after them).
    public var path: String { bin + ":/usr/local/bin:/usr/bin:/bin" }
    public var callsLog: String { directory + "/calls.log" }
    /// One line per tool invocation (`<tool> <args>`), to count how often the tools ran.
    public var invocationsLog: String { directory + "/invocations.log" }
    public var invocations: [String] {
        ((try? String(contentsOfFile: invocationsLog, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    public func write() throws {
        try FileManager.default.createDirectory(atPath: bin, withIntermediateDirectories: true)
        let versions = xcodes.map {
            "  \"\($0.developerDir)\") printf 'Xcode \($0.version)\\nBuild version \($0.build)\\n' ;;"
        }.joined(separator: "\n")
        try simctlJSON.write(toFile: directory + "/simctl.json", atomically: true, encoding: .utf8)
        for (name, text) in [
            ("xcresult-summary.json", xcresultSummary), ("xcresult-tests.json", xcresultTests),
            ("xcresult-legacy-root.json", XCResultFixtures.legacyRoot),
            ("xcresult-legacy-tests.json", XCResultFixtures.legacyTests),
        ] {
            if let text {
                try text.write(toFile: directory + "/" + name, atomically: true, encoding: .utf8)
            } else {
                unlink(directory + "/" + name)
            }
        }
        let scripts: [String: String] = [
            "xcode-select": """
            [ "$1" = "-p" ] || { echo "usage: xcode-select -p" >&2; exit 64; }
            echo '\(selected)'
            """,
            "xcodebuild": """
            if [ "$1" = "-version" ]; then
              case "$DEVELOPER_DIR" in
            \(versions)
              *) echo "xcode-select: error: tool 'xcodebuild' requires Xcode, but active developer directory '$DEVELOPER_DIR' is a command line tools instance" >&2; exit 1 ;;
              esac
              exit 0
            fi
            printf '%s\\n' "argv=$*" "DEVELOPER_DIR=$DEVELOPER_DIR" "cwd=$(pwd)" >> '\(callsLog)'
            [ -f '\(directory)/xcodebuild-sleep' ] && sleep "$(cat '\(directory)/xcodebuild-sleep')"
            action=$1
            while [ $# -gt 0 ]; do
              if [ "$1" = "-resultBundlePath" ]; then mkdir -p "$2" && printf 'fake' > "$2/Info.plist"; fi
              shift
            done
            echo "Command line invocation: xcodebuild"
            if [ "$action" = "test" ]; then echo "** TEST SUCCEEDED **"; else echo "** BUILD SUCCEEDED **"; fi
            """,
            "sw_vers": """
            case "$1" in
              -productVersion) echo '\(macosVersion)' ;;
              -buildVersion) echo '\(macosBuild)' ;;
              *) printf 'ProductName:\\t\\tmacOS\\nProductVersion:\\t\\t\(macosVersion)\\nBuildVersion:\\t\\t\(macosBuild)\\n' ;;
            esac
            """,
            "uname": """
            if [ "$1" = "-m" ]; then echo '\(arch)'; else echo Darwin; fi
            """,
            "xcrun": """
            eph='\(directory)/ephemeral.list'
            if [ "$*" = "simctl list -j devices" ]; then
              printf '{"devices":{"com.apple.CoreSimulator.SimRuntime.iOS-18-2":['
              sep=""; touch "$eph"
              while read -r u n; do printf '%s{"name":"%s","udid":"%s","state":"Booted","isAvailable":true,"deviceTypeIdentifier":"com.apple.CoreSimulator.SimDeviceType.iPhone-16"}' "$sep" "$n" "$u"; sep=","; done < "$eph"
              printf ']}}\n'; exit 0
            fi
            if [ "$1" = "simctl" ] && [ "$2" = "list" ]; then cat '\(directory)/simctl.json'; exit 0; fi
            if [ "$1" = "simctl" ] && [ "$2" = "create" ]; then
              n=$(( $(wc -l < "$eph" 2>/dev/null || echo 0) + 1 ))
              u=$(printf 'EEEEEEEE-0000-4000-8000-%012d' "$n$(date +%N | cut -c1-6)" | cut -c1-36)
              echo "$u $3" >> "$eph"; echo "$u"; exit 0
            fi
            if [ "$1" = "simctl" ] && [ "$2" = "boot" ]; then exit 0; fi
            if [ "$1" = "simctl" ] && [ "$2" = "delete" ]; then
              [ -f '\(directory)/simctl-delete-fails' ] && { echo "An error was encountered processing the command (domain=com.apple.CoreSimulator.SimError, code=405)" >&2; exit 149; }
              grep -v "^$3 " "$eph" > "$eph.new"; mv "$eph.new" "$eph"; exit 0
            fi
            if [ "$1" = "xcresulttool" ] && [ "$2" = "get" ]; then
              case "$3 $4" in
                "test-results summary") f='\(directory)/xcresult-summary.json' ;;
                "test-results tests") f='\(directory)/xcresult-tests.json' ;;
                *) case "$*" in *--id*) f='\(directory)/xcresult-legacy-tests.json' ;; *) f='\(directory)/xcresult-legacy-root.json' ;; esac ;;
              esac
              [ -f "$f" ] || { echo "error: unknown subcommand '$3'" >&2; exit 64; }
              cat "$f"; exit 0
            fi
            echo "xcrun: error: unable to find utility \\"$1\\"" >&2; exit 72
            """,
        ]
        for (name, body) in scripts {
            let path = bin + "/" + name
            let tmp = path + ".new"
            let log = "printf '%s\\n' \"${0##*/} $*\" >> '\(invocationsLog)'\n"
            try ("#!/bin/sh\n" + log + (overrides[name] ?? body) + "\n").write(
                toFile: tmp, atomically: false, encoding: .utf8)
            chmod(tmp, 0o755)
            rename(tmp, path)
        }
    }

    /// `xcrun simctl list -j runtimes devices devicetypes` of a Mac with iOS 18.2 and 18.4 runtimes, a tvOS
    /// 18.2 runtime that is unavailable (its devices too), and an iPhone whose runtime is gone.
    public static let simctlSample = #"""
        {
          "devicetypes" : [
            {
              "productFamily" : "iPhone",
              "bundlePath" : "\/Applications\/Xcode.app\/Contents\/Developer\/Platforms\/iPhoneOS.platform\/Library\/Developer\/CoreSimulator\/Profiles\/DeviceTypes\/iPhone 16.simdevicetype",
              "maxRuntimeVersion" : 4294967295,
              "maxRuntimeVersionString" : "65535.255.255",
              "identifier" : "com.apple.CoreSimulator.SimDeviceType.iPhone-16",
              "modelIdentifier" : "iPhone17,3",
              "minRuntimeVersionString" : "18.0.0",
              "minRuntimeVersion" : 1179648,
              "name" : "iPhone 16"
            },
            {
              "productFamily" : "iPad",
              "bundlePath" : "\/Applications\/Xcode.app\/Contents\/Developer\/Platforms\/iPhoneOS.platform\/Library\/Developer\/CoreSimulator\/Profiles\/DeviceTypes\/iPad Air 11-inch (M2).simdevicetype",
              "maxRuntimeVersion" : 4294967295,
              "maxRuntimeVersionString" : "65535.255.255",
              "identifier" : "com.apple.CoreSimulator.SimDeviceType.iPad-Air-11-inch-M2",
              "modelIdentifier" : "iPad14,8",
              "minRuntimeVersionString" : "17.4.0",
              "minRuntimeVersion" : 1115136,
              "name" : "iPad Air 11-inch (M2)"
            }
          ],
          "runtimes" : [
            {
              "bundlePath" : "\/Library\/Developer\/CoreSimulator\/Volumes\/iOS_22C150\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/iOS 18.2.simruntime",
              "buildversion" : "22C150",
              "platform" : "iOS",
              "runtimeRoot" : "\/Library\/Developer\/CoreSimulator\/Volumes\/iOS_22C150\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/iOS 18.2.simruntime\/Contents\/Resources\/RuntimeRoot",
              "identifier" : "com.apple.CoreSimulator.SimRuntime.iOS-18-2",
              "version" : "18.2",
              "isInternal" : false,
              "isAvailable" : true,
              "name" : "iOS 18.2",
              "supportedDeviceTypes" : [
                { "bundlePath" : "\/Applications\/Xcode.app\/Contents\/Developer\/Platforms\/iPhoneOS.platform\/Library\/Developer\/CoreSimulator\/Profiles\/DeviceTypes\/iPhone 16.simdevicetype", "name" : "iPhone 16", "identifier" : "com.apple.CoreSimulator.SimDeviceType.iPhone-16", "productFamily" : "iPhone" }
              ]
            },
            {
              "bundlePath" : "\/Library\/Developer\/CoreSimulator\/Volumes\/iOS_22E238\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/iOS 18.4.simruntime",
              "buildversion" : "22E238",
              "platform" : "iOS",
              "runtimeRoot" : "\/Library\/Developer\/CoreSimulator\/Volumes\/iOS_22E238\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/iOS 18.4.simruntime\/Contents\/Resources\/RuntimeRoot",
              "identifier" : "com.apple.CoreSimulator.SimRuntime.iOS-18-4",
              "version" : "18.4",
              "isInternal" : false,
              "isAvailable" : true,
              "name" : "iOS 18.4",
              "supportedDeviceTypes" : [ ]
            },
            {
              "bundlePath" : "\/Library\/Developer\/CoreSimulator\/Volumes\/tvOS_22K154\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/tvOS 18.2.simruntime",
              "buildversion" : "22K154",
              "platform" : "tvOS",
              "runtimeRoot" : "\/Library\/Developer\/CoreSimulator\/Volumes\/tvOS_22K154\/Library\/Developer\/CoreSimulator\/Profiles\/Runtimes\/tvOS 18.2.simruntime\/Contents\/Resources\/RuntimeRoot",
              "identifier" : "com.apple.CoreSimulator.SimRuntime.tvOS-18-2",
              "version" : "18.2",
              "isInternal" : false,
              "isAvailable" : false,
              "availabilityError" : "The runtime's disk image is not mounted.",
              "name" : "tvOS 18.2",
              "supportedDeviceTypes" : [ ]
            }
          ],
          "devices" : {
            "com.apple.CoreSimulator.SimRuntime.iOS-18-2" : [
              {
                "lastBootedAt" : "2026-11-02T09:14:07Z",
                "dataPath" : "\/Users\/rch\/Library\/Developer\/CoreSimulator\/Devices\/5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F\/data",
                "dataPathSize" : 1215897600,
                "logPath" : "\/Users\/rch\/Library\/Logs\/CoreSimulator\/5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F",
                "udid" : "5B6C1F9E-2C1D-4B8A-9B7E-0A1B2C3D4E5F",
                "isAvailable" : true,
                "logPathSize" : 339968,
                "deviceTypeIdentifier" : "com.apple.CoreSimulator.SimDeviceType.iPhone-16",
                "state" : "Shutdown",
                "name" : "iPhone 16"
              },
              {
                "dataPath" : "\/Users\/rch\/Library\/Developer\/CoreSimulator\/Devices\/9A8B7C6D-5E4F-4321-8765-0F1E2D3C4B5A\/data",
                "dataPathSize" : 0,
                "logPath" : "\/Users\/rch\/Library\/Logs\/CoreSimulator\/9A8B7C6D-5E4F-4321-8765-0F1E2D3C4B5A",
                "udid" : "9A8B7C6D-5E4F-4321-8765-0F1E2D3C4B5A",
                "isAvailable" : true,
                "deviceTypeIdentifier" : "com.apple.CoreSimulator.SimDeviceType.iPad-Air-11-inch-M2",
                "state" : "Booted",
                "name" : "iPad Air 11-inch (M2)"
              }
            ],
            "com.apple.CoreSimulator.SimRuntime.iOS-18-4" : [
              {
                "dataPath" : "\/Users\/rch\/Library\/Developer\/CoreSimulator\/Devices\/11111111-2222-4333-8444-555555555555\/data",
                "dataPathSize" : 0,
                "logPath" : "\/Users\/rch\/Library\/Logs\/CoreSimulator\/11111111-2222-4333-8444-555555555555",
                "udid" : "11111111-2222-4333-8444-555555555555",
                "isAvailable" : true,
                "deviceTypeIdentifier" : "com.apple.CoreSimulator.SimDeviceType.iPhone-16",
                "state" : "Shutdown",
                "name" : "iPhone 16"
              }
            ],
            "com.apple.CoreSimulator.SimRuntime.tvOS-18-2" : [
              {
                "availabilityError" : "runtime profile not found using \"System\" match policy",
                "dataPath" : "\/Users\/rch\/Library\/Developer\/CoreSimulator\/Devices\/AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE\/data",
                "dataPathSize" : 0,
                "logPath" : "\/Users\/rch\/Library\/Logs\/CoreSimulator\/AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE",
                "udid" : "AAAAAAAA-BBBB-4CCC-8DDD-EEEEEEEEEEEE",
                "isAvailable" : false,
                "deviceTypeIdentifier" : "com.apple.CoreSimulator.SimDeviceType.Apple-TV-4K-3rd-generation-4K",
                "state" : "Shutdown",
                "name" : "Apple TV 4K (3rd generation)"
              }
            ],
            "com.apple.CoreSimulator.SimRuntime.iOS-17-5" : [
              {
                "availabilityError" : "runtime profile not found using \"System\" match policy",
                "dataPath" : "\/Users\/rch\/Library\/Developer\/CoreSimulator\/Devices\/FFFFFFFF-EEEE-4DDD-8CCC-BBBBBBBBBBBB\/data",
                "dataPathSize" : 0,
                "logPath" : "\/Users\/rch\/Library\/Logs\/CoreSimulator\/FFFFFFFF-EEEE-4DDD-8CCC-BBBBBBBBBBBB",
                "udid" : "FFFFFFFF-EEEE-4DDD-8CCC-BBBBBBBBBBBB",
                "isAvailable" : false,
                "deviceTypeIdentifier" : "com.apple.CoreSimulator.SimDeviceType.iPhone-15",
                "state" : "Shutdown",
                "name" : "iPhone 15"
              }
            ]
          }
        }
        """#
}
