#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// The canonical form of the xcodebuild arguments that go into `job_key_inputs.sanitized_argv`.
///
/// Invariants of a canonical argv:
/// - exactly one action (`build`, `test`, `build-for-testing`, `test-without-building`), first;
/// - then options from a closed allowlist, ordered by flag (bytes), then by value; a value-taking option
///   is two tokens (`-scheme`, `App`); `-only-testing:X`-style options are one token;
/// - exactly one `-destination`; single-valued options at most once;
/// - then build settings `NAME=VALUE` (NAME `[A-Za-z_][A-Za-z0-9_]*`, optionally with `[cond=…]`
///   qualifiers), ordered by the text before `=`, each name at most once;
/// - nothing that redirects output (`-derivedDataPath`, `-resultBundlePath`, `SYMROOT=`, …) or mutates
///   the account or machine (`-allowProvisioningUpdates`, …): the worker owns those.
/// ``canonicalize(_:)`` turns any acceptable argv into that form; validation requires the form exactly,
/// so two hosts can never send different keys for the same invocation.
public enum XcodebuildArgv {
    public static let actions: Set<String> = ["build", "test", "build-for-testing", "test-without-building"]

    /// Options taking a separate value, and whether they may repeat.
    static let valued: [String: Bool] = [
        "-scheme": false, "-configuration": false, "-workspace": false, "-project": false, "-target": true,
        "-sdk": false, "-destination": false, "-testPlan": false, "-xcconfig": false, "-arch": true,
        "-toolchain": false,
        "-parallel-testing-enabled": false, "-parallel-testing-worker-count": false,
        "-maximum-concurrent-test-simulator-destinations": false, "-maximum-parallel-testing-workers": false,
        "-enableCodeCoverage": false, "-enableAddressSanitizer": false, "-enableThreadSanitizer": false,
        "-enableUndefinedBehaviorSanitizer": false, "-test-iterations": false, "-test-timeouts-enabled": false,
        "-default-test-execution-time-allowance": false, "-maximum-test-execution-time-allowance": false,
        "-only-test-configuration": true, "-skip-test-configuration": true, "-testLanguage": false,
        "-testRegion": false,
    ]
    /// Flags without a value.
    static let flags: Set<String> = [
        "-retry-tests-on-failure", "-run-tests-until-failure", "-skipPackagePluginValidation", "-skipMacroValidation",
        "-disableAutomaticPackageResolution", "-onlyUsePackageVersionsFromResolvedFile", "-skipPackageUpdates",
        "-collect-test-diagnostics=never", "-collect-test-diagnostics=on-failure",
    ]
    /// Options whose value is attached after `:` (`-only-testing:AppTests/FooTests`); may repeat.
    static let attachedPrefixes: [[UInt8]] = [Array("-only-testing:".utf8), Array("-skip-testing:".utf8)]
    /// Refused with a specific reason.
    static let forbidden: [String: String] = [
        "-derivedDataPath": "the worker chooses DerivedData (cache.derived_data)",
        "-resultBundlePath": "the worker writes result.xcresult into the job directory",
        "-resultStreamPath": "the worker owns the result stream",
        "-archivePath": "archiving is not a build/test gate",
        "-exportArchive": "exporting is not a build/test gate",
        "-exportPath": "exporting is not a build/test gate",
        "-exportOptionsPlist": "exporting is not a build/test gate",
        "-clonedSourcePackagesDirPath": "the worker owns the SwiftPM cache (cache.spm)",
        "-packageCachePath": "the worker owns the SwiftPM cache (cache.spm)",
        "-testProductsPath": "the worker owns output paths",
        "-allowProvisioningUpdates": "mutates the signing account",
        "-allowProvisioningDeviceRegistration": "mutates the signing account",
        "-resolvePackageDependencies": "not a build/test action",
        "-showBuildSettings": "not a build/test action",
        "-list": "not a build/test action",
        "-json": "changes the output format the lane parses",
        "-quiet": "the worker needs the full build log",
    ]
    /// Build settings that would move outputs out of the worker's control.
    static let forbiddenSettings: Set<String> = [
        "SYMROOT", "OBJROOT", "DSTROOT", "BUILD_DIR", "BUILD_ROOT", "CONFIGURATION_BUILD_DIR", "CONFIGURATION_TEMP_DIR",
        "PROJECT_TEMP_DIR", "TARGET_TEMP_DIR", "TEMP_DIR", "SHARED_PRECOMPS_DIR", "MODULE_CACHE_DIR", "CACHE_ROOT",
        "DERIVED_DATA_DIR", "SHARED_DERIVED_FILE_DIR", "INSTALL_ROOT", "LOCROOT", "LOCSYMROOT",
    ]

    /// An option: one token, or a flag and its value. Options order by flag bytes, then value bytes.
    struct Option {
        var tokens: [String]

        static func precedes(_ a: Option, _ b: Option) -> Bool {
            for (x, y) in zip(a.tokens, b.tokens) {
                let c = compareBytes(x, y)
                if c != 0 { return c < 0 }
            }
            return a.tokens.count < b.tokens.count
        }

        static func compareBytes(_ a: String, _ b: String) -> Int32 {
            var a = a
            var b = b
            return a.withUTF8 { x in
                b.withUTF8 { y in
                    let n = min(x.count, y.count)
                    let c = n == 0 ? 0 : memcmp(x.baseAddress!, y.baseAddress!, n)
                    return c != 0 ? c : (x.count < y.count ? -1 : (x.count > y.count ? 1 : 0))
                }
            }
        }
    }

    /// Parses and returns the canonical argv (see the type's invariants), or a precise error.
    public static func canonicalize(_ argv: [String], at path: String = "/sanitized_argv") throws(JobKeyError)
        -> [String]
    {
        var action: String?
        var options: [Option] = []
        var settings: [(name: String, token: String)] = []
        var seenSingle = Set<String>()
        var i = 0
        while i < argv.count {
            let t = argv[i]
            let here = "\(path)/\(i)"
            if attachedPrefixes.contains(where: { t.utf8.count > $0.count && t.utf8.starts(with: $0) }) {
                // `-only-testing:X` / `-skip-testing:X`: by far the most numerous tokens, so checked first.
                options.append(Option(tokens: [t]))
            } else if t.isEmpty {
                throw JobKeyError(here, "empty argument")
            } else if actions.contains(t) {
                guard action == nil else {
                    throw JobKeyError(here, "more than one action ('\(action!)' and '\(t)'); a job runs exactly one")
                }
                action = t
            } else if t.utf8.first == UInt8(ascii: "-"),
                let why = forbidden[t]
                    ?? t.utf8.firstIndex(of: UInt8(ascii: "=")).flatMap({ forbidden[String(t[..<$0])] })
            {
                throw JobKeyError(here, "'\(t)' is not allowed: \(why)")
            } else if let repeats = valued[t] {
                guard i + 1 < argv.count else { throw JobKeyError(here, "'\(t)' needs a value") }
                let value = argv[i + 1]
                guard !value.isEmpty, !(value.hasPrefix("-") && valued[value] != nil) else {
                    throw JobKeyError(here, "'\(t)' needs a value")
                }
                if !repeats {
                    guard seenSingle.insert(t).inserted else { throw JobKeyError(here, "'\(t)' given more than once") }
                }
                options.append(Option(tokens: [t, value]))
                i += 1
            } else if flags.contains(t) {
                guard seenSingle.insert(t).inserted else { throw JobKeyError(here, "'\(t)' given more than once") }
                options.append(Option(tokens: [t]))
            } else if let (name, base) = settingName(t) {
                guard !forbiddenSettings.contains(base) else {
                    throw JobKeyError(here, "build setting '\(base)' is not allowed: the worker owns output paths")
                }
                guard !settings.contains(where: { $0.name.utf8.elementsEqual(name.utf8) }) else {
                    throw JobKeyError(here, "build setting '\(name)' given more than once")
                }
                settings.append((name, t))
            } else {
                throw JobKeyError(
                    here,
                    "'\(t)' is not an allowed xcodebuild argument; give build or test with -scheme, -project/-workspace, -configuration, -destination, -sdk, -testPlan, -only-testing/-skip-testing or build settings"
                )
            }
            i += 1
        }
        guard let action else {
            throw JobKeyError(path, "no action: one of \(actions.sorted().joined(separator: ", ")) is required")
        }
        guard options.contains(where: { $0.tokens.first == "-destination" }) else {
            throw JobKeyError(path, "no -destination: exactly one destination per job is required")
        }
        // Validation sees argv that is already canonical: one linear check usually spares the sort.
        if !zip(options, options.dropFirst()).allSatisfy({ !Option.precedes($1, $0) }) {
            options.sort(by: Option.precedes)
        }
        settings.sort { Array($0.name.utf8).bytesPrecede(Array($1.name.utf8)) }
        return [action] + options.flatMap(\.tokens) + settings.map(\.token)
    }

    /// For `NAME=VALUE` or `NAME[cond=…][…]=VALUE`, returns (`NAME[cond…]`, `NAME`); nil otherwise.
    static func settingName(_ t: String) -> (String, String)? {
        let b = Array(t.utf8)
        func ident(_ c: UInt8) -> Bool {
            c == 95 || (48...57).contains(c) || (65...90).contains(c) || (97...122).contains(c)
        }
        guard let first = b.first, first == 95 || (65...90).contains(first) || (97...122).contains(first) else {
            return nil
        }
        var i = 0
        while i < b.count && ident(b[i]) { i += 1 }
        let baseEnd = i
        while i < b.count && b[i] == UInt8(ascii: "[") {
            guard let close = b[i...].firstIndex(of: UInt8(ascii: "]")), close > i + 1 else { return nil }
            i = close + 1
        }
        guard i < b.count, b[i] == UInt8(ascii: "=") else { return nil }
        return (String(decoding: b[0..<i], as: UTF8.self), String(decoding: b[0..<baseEnd], as: UTF8.self))
    }

    /// The action of a canonical argv.
    public static func action(of canonical: [String]) -> String { canonical[0] }

    /// Whether a `-destination` specifier is generic (`generic/platform=iOS`: build for any device).
    public static func isGeneric(_ spec: String) -> Bool { spec.hasPrefix("generic/") }

    /// The `key=value` pairs of a `-destination` specifier, in order, trimmed of spaces (for a generic one,
    /// those after `generic/`).
    public static func destinationFields(_ spec: String) throws(JobKeyError) -> [(key: String, value: String)] {
        var fields: [(String, String)] = []
        for part in spec.dropFirst(isGeneric(spec) ? 8 : 0).split(separator: ",") {
            let kv = part.split(separator: "=", maxSplits: 1).map { String($0) }
            guard kv.count == 2 else {
                throw JobKeyError("/sanitized_argv", "-destination '\(spec)' is not key=value,…")
            }
            fields.append((kv[0].trimmingCharactersInSpaces(), kv[1].trimmingCharactersInSpaces()))
        }
        return fields
    }

    /// The `-destination` value of a canonical argv.
    public static func destination(of canonical: [String]) -> String? {
        guard let i = canonical.firstIndex(of: "-destination"), i + 1 < canonical.count else { return nil }
        return canonical[i + 1]
    }
}
