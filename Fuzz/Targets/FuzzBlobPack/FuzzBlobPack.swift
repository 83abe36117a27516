import FuzzSupport
import RCHBundle
import RCHCore
import RCHStore
import SystemPackage

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One store for the whole run (blobs accumulate; a pack only ever adds verified blobs).
let store: LocalStore = {
    var template = Array("/tmp/rch-fuzz-store-XXXXXX".utf8CString)
    let dir = template.withUnsafeMutableBufferPointer { String(cString: mkdtemp($0.baseAddress!)!) }
    return try! LocalStore(root: dir)
}()

/// Digests of the contents the seed packs carry (a pack may only bring blobs the receiver asked for).
let wanted: Set<SHA256Digest> = Set(["a\n", "b\n", "hello\n", ""].map { SHA256Digest.of(Array($0.utf8)) })

/// libFuzzer target: the blob-pack reader of `upload_tree`. The first byte selects zstd (odd) or a bare
/// tar (even); the rest is the stream. Property: whatever is accepted is in the store and verifies.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzBlobPack(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    guard size > 0 else { return 0 }
    let fd = inputDescriptor(UnsafeRawBufferPointer(start: data + 1, count: size - 1))
    defer { close(fd) }
    var limits = ExtractLimits()
    limits.maxEntries = 64
    guard
        (try? BlobPack.receive(
            fd: FileDescriptor(rawValue: fd), compressed: data[0] & 1 == 1, wanted: wanted, store: store, limits: limits
        )) != nil
    else { return 0 }
    for d in wanted where store.blobs.has(d) { precondition(store.blobs.verify(d), "an accepted blob does not verify") }
    return 0
}

@_cdecl("FuzzBlobPack_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzBlobPack)
}
