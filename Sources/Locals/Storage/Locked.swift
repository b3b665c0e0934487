#if canImport(Darwin)
public import Darwin
#elseif canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
public import Musl
#elseif canImport(Android)
public import Android
#endif

/// State reachable only through `withLock`, guarded by a pthread mutex, in one allocation, with a
/// condition variable for waiting until the state changes.
///
/// The shape of `Synchronization.Mutex`, on a pthread mutex as swift-nio's `NIOLock` is: on Linux
/// with Swift 6.3, `Mutex` waits with raw futex calls that Thread Sanitizer does not see, so every
/// access it guards is reported as a race, and the test suite runs under Thread Sanitizer.
@usableFromInline
struct Locked<State>: @unchecked Sendable {
    // @unchecked: the state is only touched inside `withLock`, with the mutex held.
    @usableFromInline let storage: LockedStorage<State>

    @inlinable
    init(storage: LockedStorage<State>) {
        self.storage = storage
    }

    static func make(_ state: State) -> Locked<State> {
        Locked(storage: LockedStorage.make(state))
    }

    @inlinable
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try storage.withLock(body)
    }

    /// Takes the lock and runs `attempt` until it returns a result, sleeping on the condition
    /// variable in between (until `wakeWaiters()`); never spins. (A name of its own, so that a
    /// trailing closure given to `withLock` never lands here.)
    func waitForLock<R>(until attempt: (inout State) -> R?) -> R {
        storage.waitForLock(until: attempt)
    }

    /// Wakes every thread waiting in `waitForLock(until:)`.
    func wakeWaiters() {
        storage.wakeWaiters()
    }
}

/// A mutex and a condition variable, side by side in a `LockedStorage`'s tail.
@usableFromInline
struct MutexAndCondition {
    @usableFromInline var mutex = pthread_mutex_t()
    @usableFromInline var condition = pthread_cond_t()
}

/// The state in the header, the mutex in the tail, whose address is stable for the object's life
/// (swift-nio's `LockStorage` does the same).
@usableFromInline
final class LockedStorage<State>: ManagedBuffer<State, MutexAndCondition> {
    static func make(_ state: State) -> LockedStorage<State> {
        let storage = unsafeDowncast(create(minimumCapacity: 1) { _ in state }, to: LockedStorage<State>.self)
        storage.withUnsafeMutablePointerToElements { pair in
            pair.initialize(to: MutexAndCondition())
            let result = pthread_mutex_init(&pair.pointee.mutex, nil)
            precondition(result == 0, "swift-locals: pthread_mutex_init failed: \(result)")
            pthread_cond_init(&pair.pointee.condition, nil)
        }
        return storage
    }

    @inlinable
    var mutex: UnsafeMutablePointer<pthread_mutex_t> {
        withUnsafeMutablePointerToElements { UnsafeMutableRawPointer($0).assumingMemoryBound(to: pthread_mutex_t.self) }
    }

    var condition: UnsafeMutablePointer<pthread_cond_t> {
        withUnsafeMutablePointerToElements { pair in
            (UnsafeMutableRawPointer(pair) + MemoryLayout<MutexAndCondition>.offset(of: \.condition)!)
                .assumingMemoryBound(to: pthread_cond_t.self)
        }
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
    }

    @inlinable
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        let mutex = self.mutex
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&header)
    }

    func waitForLock<R>(until attempt: (inout State) -> R?) -> R {
        let mutex = self.mutex
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        while true {
            if let result = attempt(&header) {
                return result
            }
            pthread_cond_wait(condition, mutex)
        }
    }

    func wakeWaiters() {
        pthread_mutex_lock(mutex)
        pthread_cond_broadcast(condition)
        pthread_mutex_unlock(mutex)
    }
}
