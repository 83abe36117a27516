import FuzzSupport
import RCHCore
import RCHProtocol
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// libFuzzer target: what `rch-worker rpc` does with the bytes it reads before any op runs — the bounded
/// header line, strict JSON, the envelope, a stream descriptor, the exact-length body and end of input.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzFraming(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let fd = inputDescriptor(UnsafeRawBufferPointer(start: data, count: size))
    defer { close(fd) }
    let reader = FrameReader(fd: FileDescriptor(rawValue: fd), bufferSize: 4096, idleTimeoutSeconds: 5)
    guard let line = try? reader.readHeaderLine(maxBytes: 8192), let json = try? JSONParser().parse(line) else {
        return 0
    }
    _ = RPCRequest.bestEffortRequestID(json)
    guard let request = try? RPCRequest(json: json) else { return 0 }
    if request.payload["stream"] != nil {
        guard let stream = try? StreamDescriptor(json: request.payload["stream"]) else { return 0 }
        var hasher = StreamingSHA256()
        let got = (try? reader.readBody(count: min(stream.contentLength, 1 << 20)) { hasher.update($0) }) ?? 0
        precondition(got <= stream.contentLength)
    }
    _ = try? reader.atEnd()
    return 0
}

@_cdecl("FuzzFraming_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzFraming)
}
