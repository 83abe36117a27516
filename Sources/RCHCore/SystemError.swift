import SystemPackage

/// A failed system call, with the operation and the path it was about.
public struct SystemError: Error, CustomStringConvertible, Sendable {
    public let operation: String
    public let path: String?
    public let errno: Errno

    public init(_ operation: String, path: String? = nil, errno: Errno) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    /// For errors thrown by swift-system calls (always `Errno` in practice).
    public init(_ operation: String, path: String? = nil, errno error: any Error) {
        self.init(operation, path: path, errno: (error as? Errno) ?? .ioError)
    }

    public var description: String {
        if let path { return "\(operation) \(path): \(errno)" }
        return "\(operation): \(errno)"
    }
}
