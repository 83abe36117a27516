#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// What every fuzz target shares. SwiftPM links an executable's entry point as `<Module>_main`; each
/// target defines that symbol and hands control to libFuzzer's driver with its test function.
public typealias FuzzCallback = @convention(c) (UnsafePointer<UInt8>, Int) -> CInt

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<CInt>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: FuzzCallback
) -> CInt

public func runFuzzer(
    _ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?, _ callback: FuzzCallback
) -> CInt {
    var c = argc
    var v = argv
    return LLVMFuzzerRunDriver(&c, &v, callback)
}

/// The input as a readable file descriptor (a pipe; inputs stay below the pipe buffer: run with
/// `-max_len` ≤ 65536). The caller closes it.
public func inputDescriptor(_ bytes: UnsafeRawBufferPointer) -> Int32 {
    var fds: [Int32] = [0, 0]
    guard pipe(&fds) == 0 else { fatalError("pipe failed") }
    var off = 0
    while off < bytes.count {
        let n = write(fds[1], bytes.baseAddress! + off, bytes.count - off)
        guard n > 0 else { fatalError("pipe write failed") }
        off += n
    }
    close(fds[1])
    return fds[0]
}
