import FuzzSupport
import RCHCore

/// libFuzzer target: the strict JSON parser. Property: whatever it accepts re-serialises (RFC 8785) to
/// bytes it accepts again as the same value.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzJSON(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    guard let value = try? JSONParser().parse(bytes) else { return 0 }
    let canonical = value.canonicalBytes
    guard let again = try? JSONParser().parse(canonical) else { fatalError("canonical bytes do not parse again") }
    precondition(again.canonicalBytes == canonical, "canonical form is not stable")
    return 0
}

@_cdecl("FuzzJSON_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzJSON)
}
