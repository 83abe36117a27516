import RCHCore

/// One file or symlink chosen for a bundle, before its content is read.
public struct SelectedEntry: Sendable {
    public enum Kind: Sendable, Equatable {
        case file(executable: Bool)
        /// A symlink and its canonical target. `fromFile` marks a git symlink checked out as a plain
        /// file (`core.symlinks=false`), whose content is the target.
        case symlink(target: String)
    }

    /// Canonical path: NFC UTF-8, root-relative, `/`-separated.
    public var path: String
    /// `path.utf8`, kept for byte-order sorting.
    public var pathBytes: [UInt8]
    /// The on-disk root-relative path as raw bytes (may differ from `path` by normalisation).
    public var diskPath: [UInt8]
    public var kind: Kind
    /// Identity at selection time (for files: compared again after reading).
    public var identity: FileIdentity

    public var size: UInt64 {
        switch kind {
        case .file: identity.size
        case .symlink(let t): UInt64(t.utf8.count)
        }
    }
}

/// How the bundler chooses files.
public enum SelectionMode: String, Sendable, CaseIterable {
    /// Walk the directory tree with lstat (no following), minus the exclusions.
    case worktree
    /// Only the files in git's index (`git ls-files --stage`), minus the exclusions; type and exec bit
    /// come from the index, content from the worktree.
    case gitIndex = "git_index"
    /// The worktree walk (same types, exec bits and content as `worktree`), keeping only what git would
    /// commit: tracked files plus untracked files git does not ignore (`git ls-files --cached --others
    /// --exclude-standard`).
    case git

    /// The usage error for an unknown mode.
    public static var usage: String {
        "--mode must be " + allCases.map(\.rawValue).joined(separator: ", ")
    }
}

/// A path the selection left out and the rule that did (`default: …`, `.rchignore:N: pattern`, `git: ignored`).
public struct Exclusion: Sendable, Equatable {
    /// Root-relative; directories end with `/` (nothing below them was visited).
    public var path: String
    public var rule: String

    public init(_ path: String, rule: String) {
        self.path = path
        self.rule = rule
    }
}

/// The result of selection: entries in canonical byte order, plus what was left out.
public struct Selection: Sendable {
    public var entries: [SelectedEntry]
    /// What the exclusions removed and why, sorted by path.
    public var exclusions: [Exclusion]
    /// Root-relative paths the exclusions removed (directories end with `/`), for reporting.
    public var excluded: [String] { exclusions.map(\.path) }
    /// Non-fatal findings (dangling internal symlinks, LFS pointers …).
    public var warnings: [String]
}
