import Foundation

/// Process-wide reporting of long work (progress) and of details (`-v`) for a command-line front-end.
///
/// Libraries report into ``Activity/shared``; only a front-end attaches a ``Observer`` (the terminal
/// renderer of `rch-xcode`). Without one, every call is a lock and a nil check, nothing else, so reporting
/// may sit on hot paths at the granularity of a file or a 1 MiB chunk. One phase runs at a time (the
/// lane's long work is sequential: bundling, then uploading, or downloading); a new phase replaces the
/// previous one.
public final class Activity: @unchecked Sendable {
    public static let shared = Activity()

    /// What an observer sees of the current phase.
    public struct Phase: Sendable, Equatable {
        public var name: String
        /// Expected bytes, when known.
        public var totalBytes: UInt64?
        public var bytes: UInt64 = 0
        public var files: Int = 0
        /// Monotonic start, in nanoseconds.
        public var startedNanos: UInt64
    }

    /// A front-end's view: it samples ``current`` on its own schedule and receives details as they come.
    public protocol Observer: AnyObject, Sendable {
        /// Whether `detail` messages are wanted (`-v`); when false they are not even formatted.
        var wantsDetails: Bool { get }
        func detail(_ message: String)
        func phaseEnded(_ phase: Phase)
    }

    private let lock = NSLock()
    private var observer: (any Observer)?
    private var phase: Phase?

    public init() {}

    public func attach(_ o: (any Observer)?) {
        lock.withLock { observer = o }
    }

    /// The phase in progress, if any (for the renderer).
    public var current: Phase? { lock.withLock { phase } }

    /// Starts a phase (replacing any other).
    public func begin(_ name: String, totalBytes: UInt64? = nil) {
        lock.withLock {
            guard observer != nil else { return }
            phase = Phase(name: name, totalBytes: totalBytes, startedNanos: DispatchTime.now().uptimeNanoseconds)
        }
    }

    /// Counts work done in the current phase.
    public func advance(bytes: UInt64, files: Int = 0) {
        lock.withLock {
            guard observer != nil, phase != nil else { return }
            phase!.bytes += bytes
            phase!.files += files
        }
    }

    /// Ends the current phase if it is `name`.
    public func end(_ name: String) {
        let (o, ended): ((any Observer)?, Phase?) = lock.withLock {
            guard let p = phase, p.name == name else { return (nil, nil) }
            phase = nil
            return (observer, p)
        }
        if let o, let ended { o.phaseEnded(ended) }
    }

    /// A detail for `-v` (the message is built only if an observer wants it).
    public func detail(_ message: @autoclosure () -> String) {
        guard let o = lock.withLock({ observer }), o.wantsDetails else { return }
        o.detail(message())
    }
}
