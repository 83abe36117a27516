#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// SIGINT / SIGTERM during a run: the first asks the run to stop (the running step is cancelled on the
/// worker, the run ends CANCELLED with exit 80); a second one exits at once (130).
public enum RunSignals {
    nonisolated(unsafe) static var count: Int32 = 0

    /// Installs the handlers (idempotent).
    public static func install() {
        let handler: @convention(c) (Int32) -> Void = { _ in
            RunSignals.count += 1
            if RunSignals.count > 1 { _exit(130) }
            let msg =
                "\nrch-xcode: stopping — cancelling the running job on the worker (press Ctrl-C again to quit at once)\n"
            _ = msg.withCString { write(2, $0, strlen($0)) }
        }
        var action = sigaction()
        #if canImport(Darwin)
            action.__sigaction_u.__sa_handler = handler
        #else
            action.__sigaction_handler.sa_handler = handler
        #endif
        sigemptyset(&action.sa_mask)
        action.sa_flags = 0
        sigaction(SIGINT, &action, nil)
        sigaction(SIGTERM, &action, nil)
    }

    /// Whether a stop was requested.
    public static var requested: Bool { count > 0 }
}
