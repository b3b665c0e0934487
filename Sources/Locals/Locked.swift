#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Android)
import Android
#endif

/// State reachable only through `withLock`, guarded by a pthread mutex.
///
/// The shape of `Synchronization.Mutex`, on a pthread mutex as swift-nio's `NIOLock` is: on Linux
/// with Swift 6.3, `Mutex` waits with raw futex calls that Thread Sanitizer does not see, so every
/// access it guards is reported as a race, and the test suite runs under Thread Sanitizer.
final class Locked<State>: @unchecked Sendable {
    // @unchecked: `state` is only touched inside `withLock`, with the mutex held.
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private var state: State

    init(_ state: State) {
        self.state = state
        mutex = .allocate(capacity: 1)
        mutex.initialize(to: pthread_mutex_t())
        let result = pthread_mutex_init(mutex, nil)
        precondition(result == 0, "swift-locals: pthread_mutex_init failed: \(result)")
    }

    deinit {
        pthread_mutex_destroy(mutex)
        mutex.deallocate()
    }

    func withLock<R, E: Error>(_ body: (inout State) throws(E) -> R) throws(E) -> R {
        pthread_mutex_lock(mutex)
        defer { pthread_mutex_unlock(mutex) }
        return try body(&state)
    }
}
