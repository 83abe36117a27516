import Foundation
import RCHBundle
import RCHCore

/// The likely delta base's manifest, read and strictly parsed on a thread of its own once the bundler has
/// found the tree changed (``start()``, called from the bundler's `whenChanged`): for an edit push the parse
/// of a few thousand entries is otherwise a serial step between the bundle and the request, and an
/// unchanged tree — answered by one `has_source` — needs no base at all, so its CPU is not spent (on two
/// cores it competed with the walk). Nothing is trusted early — the result is exactly what
/// ``Pusher/localManifest(_:)`` would parse, and nil (parse again, and fail there) on any error.
final class BasePrefetch: @unchecked Sendable {
    let sha: SHA256Digest
    let path: String
    private let lock = NSLock()
    private var work: BackgroundWork<SourceManifest>?

    init(sha: SHA256Digest, path: String) {
        self.sha = sha
        self.path = path
    }

    /// Starts the parse (once).
    func start() {
        lock.withLock {
            if work == nil {
                let path = self.path
                work = BackgroundWork { try SourceManifest(canonicalFile: try DurableFile.read(path)) }
            }
        }
    }

    /// Waits for the parse; nil if it was not started or failed.
    func manifest() -> SourceManifest? { try? lock.withLock { work }?.wait() }
}
