import FuzzSupport
import RCHBundle

/// libFuzzer target: the `.rchignore` parser and matcher (globs, classes, `**`, negation). The input is
/// the file's text, a NUL, then a path to match (as a file and as a directory).
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzIgnore(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let bytes = Array(UnsafeBufferPointer(start: data, count: size))
    let cut = bytes.firstIndex(of: 0) ?? bytes.count
    let rules = IgnoreRules(rchignore: Array(bytes[..<cut]))
    let path = cut < bytes.count ? Array(bytes[(cut + 1)...]) : Array("a/b/c.swift".utf8)
    let asFile = rules.excludes(path, isDirectory: false)
    let asDirectory = rules.excludes(path, isDirectory: true)
    precondition(
        asFile == rules.excludes(path, isDirectory: false) && asDirectory == rules.excludes(path, isDirectory: true))
    return 0
}

@_cdecl("FuzzIgnore_main")
public func main(_ argc: CInt, _ argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?) -> CInt {
    runFuzzer(argc, argv, fuzzIgnore)
}
