/// State reachable only through `withLock`, guarded by a `PlatformMutex`, with waiting until the
/// state changes.
///
/// The shape of `Synchronization.Mutex` (and of swift-nio's `NIOLockedValueBox`), on a pthread
/// mutex: see `PlatformMutex` for why.
struct Locked<State>: @unchecked Sendable {
    // @unchecked: the state is only touched inside `withLock`, with the mutex held.
    let storage: LockedStorage<State>

    init(storage: LockedStorage<State>) {
        self.storage = storage
    }

    static func make(_ state: State) -> Locked<State> {
        Locked(storage: LockedStorage(state))
    }

    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try storage.withLock(body)
    }

    /// Takes the lock and runs `attempt` until it returns a result, sleeping in between (until
    /// `wakeWaiters()`); never spins. (A name of its own, so that a trailing closure given to
    /// `withLock` never lands here.)
    func waitForLock<R>(until attempt: (inout State) -> R?) -> R {
        storage.waitForLock(until: attempt)
    }

    /// Wakes every thread waiting in `waitForLock(until:)`.
    func wakeWaiters() {
        storage.mutex.withLock { storage.mutex.broadcast() }
    }
}

/// The state and its mutex.
final class LockedStorage<State> {
    let mutex = PlatformMutex()
    /// Unchecked: only reached inside `withLock`, under the mutex, which is what excludes; the
    /// runtime's dynamic check on every access cost more than the lock.
    @exclusivity(unchecked) var state: State

    init(_ state: State) {
        self.state = state
    }

    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        return try body(&state)
    }

    func waitForLock<R>(until attempt: (inout State) -> R?) -> R {
        mutex.lock()
        defer { mutex.unlock() }
        while true {
            if let result = attempt(&state) {
                return result
            }
            mutex.wait()
        }
    }
}
