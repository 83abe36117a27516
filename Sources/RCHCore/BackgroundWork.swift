import Foundation

/// One piece of work run on a thread of its own while the caller does something else (e.g. reaching the
/// worker while the tree is bundled). ``wait()`` joins it and returns its result or rethrows its error;
/// it may be called any number of times. The work must not share mutable state with the caller until
/// ``wait()`` has returned.
public final class BackgroundWork<T>: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var result: Result<T, any Error>?

    public init(_ body: @escaping @Sendable () throws -> T) {
        Thread { [self] in
            result = Result { try body() }
            done.signal()
        }.start()
    }

    /// Waits for the work to end.
    public func wait() throws -> T {
        done.wait()
        done.signal()
        return try result!.get()
    }
}
