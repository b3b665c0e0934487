#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Android)
import Android
#endif

/// State reachable only through `withLock`, guarded by a pthread mutex, in one allocation.
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

    @inlinable
    static func make(_ state: State) -> Locked<State> {
        Locked(storage: LockedStorage.make(state))
    }

    @inlinable
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        try storage.withLock(body)
    }
}

/// The state in the header, the mutex in the tail, whose address is stable for the object's life
/// (swift-nio's `LockStorage` does the same).
@usableFromInline
final class LockedStorage<State>: ManagedBuffer<State, pthread_mutex_t> {
    @inlinable
    static func make(_ state: State) -> LockedStorage<State> {
        let storage = unsafeDowncast(create(minimumCapacity: 1) { _ in state }, to: LockedStorage<State>.self)
        let result = pthread_mutex_init(storage.mutex, nil)
        precondition(result == 0, "swift-locals: pthread_mutex_init failed: \(result)")
        return storage
    }

    @inlinable
    var mutex: UnsafeMutablePointer<pthread_mutex_t> {
        withUnsafeMutablePointerToElements { $0 }
    }

    deinit {
        pthread_mutex_destroy(mutex)
    }

    @inlinable
    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        let mutex = self.mutex
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&header)
    }
}
