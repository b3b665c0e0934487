#if canImport(Darwin)
import Darwin
#elseif canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Android)
import Android
#endif
import Synchronization

/// Storage that holds values for threads and must hear when one of them exits.
protocol ThreadExitObserver: AnyObject, Sendable {
    func threadExited(_ thread: ThreadID)
}

/// What swift-locals keeps for one OS thread, in a single pthread key whose destructor runs when
/// the thread exits (as swift-nio's `ThreadSpecificVariable` does). Only its own thread touches it.
final class ThreadContext {
    /// This thread's identity; never reused by a later thread.
    let id: ThreadID
    /// Keys whose initializer is running on this thread right now, to stop re-entrant touches.
    var initializing: [(storage: ObjectIdentifier, key: StorageKey)] = []
    /// Storages that hold a value for this thread and are told when it exits.
    private var observers: [ObjectIdentifier: Observer] = [:]

    private struct Observer {
        weak var storage: (any ThreadExitObserver)?
    }

    private static let serials = Atomic<UInt64>(0)

    private init() {
        id = ThreadID(serial: Self.serials.add(1, ordering: .relaxed).newValue)
    }

    deinit {
        for observer in observers.values {
            observer.storage?.threadExited(id)
        }
    }

    func observeExit(by storage: some ThreadExitObserver) {
        let key = ObjectIdentifier(storage)
        if observers[key]?.storage == nil {
            observers[key] = Observer(storage: storage)
        }
    }

    func isInitializing(_ storage: ObjectIdentifier, _ key: StorageKey) -> Bool {
        initializing.contains { $0.storage == storage && $0.key == key }
    }

    /// The calling thread's context, created on its first use.
    static var current: ThreadContext {
        if let raw = pthread_getspecific(pthreadKey) {
            return Unmanaged<ThreadContext>.fromOpaque(raw).takeUnretainedValue()
        }
        let context = ThreadContext()
        let result = pthread_setspecific(pthreadKey, Unmanaged.passRetained(context).toOpaque())
        precondition(result == 0, "swift-locals: pthread_setspecific failed: \(result)")
        return context
    }

    private static let pthreadKey: pthread_key_t = {
        var key = pthread_key_t()
        let result = pthread_key_create(&key, releaseContext)
        precondition(result == 0, "swift-locals: pthread_key_create failed: \(result)")
        return key
    }()
}

#if canImport(Darwin)
private let releaseContext: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    Unmanaged<ThreadContext>.fromOpaque(raw).release()
}
#else
private let releaseContext: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    guard let raw else { return }
    Unmanaged<ThreadContext>.fromOpaque(raw).release()
}
#endif
