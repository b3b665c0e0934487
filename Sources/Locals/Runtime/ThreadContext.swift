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

/// One entry of a thread's lookup cache: which Local and which task (or this thread, address 0)
/// the cell belongs to, the Local's removal epoch when it was cached, and the cell (unretained).
@usableFromInline
struct CacheSlot {
    @usableFromInline var local: UInt64 = 0
    @usableFromInline var address: UInt = 0
    @usableFromInline var id: UInt64 = 0
    @usableFromInline var epoch: UInt = 0
    /// An unretained `OwnedCell<Value>` of the Local `local`, or nil. Dereferenced only when
    /// local, address, id and epoch all match: then the cell belongs to the running task (or
    /// thread), which is alive, and has not been removed since it was cached, so it is alive too.
    @usableFromInline var cell: UnsafeMutableRawPointer? = nil
}

/// What swift-locals keeps for one OS thread, in a single pthread key whose destructor runs when
/// the thread exits (as swift-nio's `ThreadSpecificVariable` does). Only its own thread touches it.
///
/// Besides the thread's identity it holds a small cache from (Local, task) to the task's cell, so
/// that a steady-state access finds its cell without taking the Local's lock. A cached cell is
/// used only while the Local's removal epoch is unchanged; every removal of a task's cell, and
/// every release of one by a sweep, bumps it (a thread's cells are only ever in its own cache). The cache holds no reference: a cell
/// removed by its own owner is released at once, and one removed by anybody else while its owner
/// may be running is parked until the owner's next touch or end (see `LocalTables.parked`).
@usableFromInline
final class ThreadContext {
    /// This thread's identity; never reused by a later thread.
    let id: ThreadID
    @usableFromInline let slots: UnsafeMutablePointer<CacheSlot>
    @inlinable static var slotMask: Int { 15 }
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
        slots = .allocate(capacity: Self.slotMask + 1)
        slots.initialize(repeating: CacheSlot(), count: Self.slotMask + 1)
    }

    deinit {
        slots.deallocate()
        for observer in observers.values {
            observer.storage?.threadExited(id)
        }
    }

    @inlinable
    static func slotIndex(local: UInt64, address: UInt) -> Int {
        Int(truncatingIfNeeded: (address >> 4) ^ (UInt(truncatingIfNeeded: local) &* 0x9E37_79B9)) & slotMask
    }

    /// The cached cell of `local` for the task at `address` with `id` (or this thread, for
    /// address 0), if it was cached under the Local's current removal epoch. No lock, no retain.
    @inlinable
    @inline(__always)
    static func cachedCell(
        key: pthread_key_t, local: UInt64, address: UInt, id: UInt64, epoch: borrowing Atomic<UInt>
    ) -> UnsafeMutableRawPointer? {
        guard let context = pthread_getspecific(key) else {
            return nil
        }
        let slots = Unmanaged<ThreadContext>.fromOpaque(context)._withUnsafeGuaranteedRef { $0.slots }
        let slot = slots + slotIndex(local: local, address: address)
        guard slot.pointee.local == local, slot.pointee.address == address, slot.pointee.id == id,
            slot.pointee.epoch == epoch.load(ordering: .relaxed)
        else {
            return nil
        }
        return slot.pointee.cell
    }

    /// Caches `cell` as the value of `local` for the task at `address` with `id` (or this
    /// thread, for address 0), as of the Local's removal epoch `epoch`.
    func cache(_ cell: AnyObject, local: UInt64, address: UInt, id: UInt64, epoch: UInt) {
        slots[Self.slotIndex(local: local, address: address)] = CacheSlot(
            local: local,
            address: address,
            id: id,
            epoch: epoch,
            cell: Unmanaged.passUnretained(cell).toOpaque()
        )
    }

    func observeExit(by storage: some ThreadExitObserver) {
        let key = ObjectIdentifier(storage)
        guard observers[key]?.storage == nil else { return }
        // A long-lived thread may outlive many Locals: forget the ones that are gone.
        if observers.count >= 16 {
            observers = observers.filter { $0.value.storage != nil }
        }
        observers[key] = Observer(storage: storage)
    }

    func isInitializing(_ storage: ObjectIdentifier, _ key: StorageKey) -> Bool {
        initializing.contains { $0.storage == storage && $0.key == key }
    }

    /// A number that identifies the calling thread among the threads alive now (never 0).
    @inlinable
    static var token: UInt {
        #if canImport(Glibc)
        UInt(pthread_self())  // pthread_t is an unsigned integer here, a pointer or Int elsewhere
        #else
        UInt(bitPattern: pthread_self())
        #endif
    }

    /// Gives the processor to another thread, for locks that found their lock taken.
    static func yield() {
        sched_yield()
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

    @usableFromInline static let pthreadKey: pthread_key_t = {
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
