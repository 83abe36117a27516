import Foundation
import RCHBundle
import RCHCore

/// The likely delta base's manifest, read and strictly parsed on a thread of its own while the tree is
/// bundled: for an edit push the parse of a few thousand entries is otherwise a serial step between the
/// bundle and the request (on hosts with more than two cores; on two it competes with the bundler's
/// reader and hasher and gains little). Nothing is trusted early — the result is exactly
/// what ``Pusher/localManifest(_:)`` would parse, and nil (parse again, and fail there) on any error.
struct BasePrefetch: Sendable {
    let sha: SHA256Digest
    private let work: BackgroundWork<SourceManifest>

    init(sha: SHA256Digest, path: String) {
        self.sha = sha
        work = BackgroundWork { try SourceManifest(json: try JSONParser().parse(try DurableFile.read(path))) }
    }

    /// Waits for the parse; nil if it failed.
    func manifest() -> SourceManifest? { try? work.wait() }
}
