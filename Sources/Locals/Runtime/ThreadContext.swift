import Synchronization

/// Storage that holds values for threads and must hear when one of them exits.
protocol ThreadExitObserver: AnyObject, Sendable {
    func threadExited(_ thread: ThreadID)
}

/// One entry of a thread's lookup cache.
///
/// A task or thread entry names a Local, a task (address and 64-bit id; address 0 for this thread
/// itself) and the Local's removal epoch when it was cached, and points to the cell without
/// retaining it. A session entry names a Local and points to a session cell it retains.
@usableFromInline
struct CacheSlot {
    @usableFromInline var local: UInt64 = 0
    @usableFromInline var address: UInt = 0
    @usableFromInline var id: UInt64 = 0
    @usableFromInline var epoch: UInt = 0
    /// The thread's run stamp when the slot was stored (see `ThreadContext.runStamp`).
    @usableFromInline var stamp: UInt64 = 0
    @usableFromInline var cell: UnsafeMutableRawPointer? = nil
    /// Whether the slot holds a retain on `cell` (a session cell).
    var retained = false
}

/// What swift-locals keeps for one OS thread, in a single pthread key whose destructor runs when
/// the thread exits (as swift-nio's `ThreadSpecificVariable` does). Only its own thread touches it.
///
/// Besides the thread's identity it holds a small cache from (Local, task) to the task's cell, so
/// that a steady-state access finds its cell without taking any lock. The rule for when a cached
/// cell may be used belongs to the backends (`CellStorage`, and `SessionStorage` for session
/// slots); this type only keeps the slots.
@usableFromInline
final class ThreadContext {
    /// This thread's identity; never reused by a later thread.
    let id: ThreadID
    @usableFromInline let slots: UnsafeMutablePointer<CacheSlot>
    @inlinable static var slotMask: Int { 63 }
    /// Keys whose initializer is running on this thread right now, to stop re-entrant touches.
    @exclusivity(unchecked) var initializing: [(local: ObjectIdentifier, key: OwnerKey)] = []
    /// An initial value a synchronous run's view made and could not put in place (a removal
    /// elsewhere came in meanwhile): the view put in place again takes it, so that the
    /// initializer runs once (see `CellStorage.enterRunView`).
    @exclusivity(unchecked) var viewInitial: (storage: ObjectIdentifier, owner: OwnerKey, value: any Sendable)?
    /// Session keys whose initializer is running on this thread right now, by session table.
    @exclusivity(unchecked) var initializingSessions: [(table: ObjectIdentifier, key: AnyHashable)] = []
    /// The synchronous snapshot run going on on this thread, if any (see `SnapshotRun`), and its
    /// stamp (0 for none): a task or thread slot cached under another stamp is not used, so that
    /// an access inside the run finds its way to the run's view of the Local.
    @exclusivity(unchecked) @usableFromInline var runStamp: UInt64 = 0
    /// Not retained: the run's caller holds it for as long as it is the thread's current one.
    @exclusivity(unchecked) var activeRunLink: Unmanaged<ActiveRun>?

    var activeRun: ActiveRun? {
        get { activeRunLink?.takeUnretainedValue() }
        set { activeRunLink = newValue.map(Unmanaged.passUnretained) }
    }

    /// The thread's current run if `owner` runs it, unretained (its caller holds it).
    func run(of owner: OwnerKey) -> Unmanaged<ActiveRun>? {
        guard let run = activeRunLink, run._withUnsafeGuaranteedRef({ $0.owner == owner }) else { return nil }
        return run
    }
    /// An ended run kept for the next one on this thread (see `ActiveRun.recycle`).
    @exclusivity(unchecked) var spareRun: ActiveRun?
    @exclusivity(unchecked) private var stamps: UInt64 = 0

    /// A stamp no earlier run on this thread had.
    func nextStamp() -> UInt64 {
        stamps += 1
        return stamps
    }

    /// The custom discriminators' Locals that a capture asks for their session, as this thread
    /// last read them, and the version they had then (see `LiveLocals.capture`). They hold
    /// their Locals weakly: a Local that went meanwhile is skipped, and the next capture after
    /// the change reads them again.
    /// (Retained by hand, see `keep(_:version:)`: a capture reads it with no reference counting.)
    @exclusivity(unchecked) private(set) var sessionGroups = Unmanaged.passRetained(SessionGroups([]))
    @exclusivity(unchecked) private(set) var sessionGroupsVersion: UInt = .max
    /// Whether a capture on this thread is going through `sessionGroups`.
    @exclusivity(unchecked) var isTakingSessions = false

    /// Kept `.thread` parts dropped where releasing them could run a deinit in the middle of an
    /// access (see `Cell+ThreadPart`): released at the thread's next capture, or when it exits.
    @exclusivity(unchecked) private(set) var parkedParts: [AnyObject] = []

    /// Parks `part` on the calling thread.
    @usableFromInline
    static func park(_ part: AnyObject) {
        currentUnmanaged._withUnsafeGuaranteedRef { $0.parkedParts.append(part) }
    }

    /// Releases the parked parts: their values' deinits run here (user code, which may park more).
    func releaseParkedParts() {
        let parked = parkedParts
        parkedParts = []
        withExtendedLifetime(parked) {}
    }

    /// Keeps `groups` as the session groups of `version` (never while `isTakingSessions`).
    func keep(_ groups: SessionGroups, version: UInt) {
        let old = sessionGroups
        sessionGroups = Unmanaged.passRetained(groups)
        sessionGroupsVersion = version
        old.release()
    }

    /// How deep custom discriminators' `currentKey` calls are nested on this thread right now.
    @exclusivity(unchecked) @usableFromInline var keyDepth = 0
    /// Storages that hold a value for this thread and are told when it exits.
    @exclusivity(unchecked) private var observers: [ObjectIdentifier: Observer] = [:]
    /// How many observers there may be before the ones that are gone are forgotten: twice as many
    /// as were left the last time, so that a thread touching many Locals filters rarely.
    @exclusivity(unchecked) private var observersBeforeFilter = 16
    /// Keeps other threads' busy objects off this one's lines (`keyDepth` is written on every
    /// session access).
    private let padding = CacheLinePadding()

    private struct Observer {
        weak var storage: (any ThreadExitObserver)?
    }

    private static let serials = Atomic<UInt64>(0)

    /// The scope chain's task-local, its address, its link type's metadata and whether the
    /// runtime binds without a closure (`ScopeChain.key`, `keyAddress`, `linkType`, `canBind`),
    /// copied here from the globals: a snapshot run reads them through the context it already
    /// has, where each global read is a call to the one-time initialization check.
    let chainKey = ScopeChain.key
    nonisolated(unsafe) let chainKeyAddress = ScopeChain.keyAddress
    nonisolated(unsafe) let chainLinkType = ScopeChain.linkType
    let canBind = ScopeChain.canBind

    private init() {
        id = ThreadID(serial: Self.serials.add(1, ordering: .relaxed).newValue)
        slots = .allocate(capacity: Self.slotMask + 1)
        slots.initialize(repeating: CacheSlot(), count: Self.slotMask + 1)
    }

    deinit {
        for index in 0...Self.slotMask {
            release(slots[index])
        }
        slots.deallocate()
        sessionGroups.release()
        for observer in observers.values {
            observer.storage?.threadExited(id)
        }
    }

    @inlinable
    static func slotIndex(local: UInt64, address: UInt) -> Int {
        Int(truncatingIfNeeded: (address >> 4) ^ (UInt(truncatingIfNeeded: local) &* 0x9E37_79B9)) & slotMask
    }

    /// The calling thread's context, or nil if it has none yet. No allocation, no lock.
    @inlinable
    @inline(__always)
    static func existing(key: Platform.ThreadKey) -> Unmanaged<ThreadContext>? {
        guard let raw = Platform.value(for: key) else { return nil }
        return Unmanaged<ThreadContext>.fromOpaque(raw)
    }

    /// Puts `slot` at its place, and releases what the place held after it is whole again: a
    /// released session cell may run a deinit that uses this very cache.
    func store(_ slot: CacheSlot, at index: Int) {
        let old = slots[index]
        slots[index] = slot
        release(old)
    }

    private func release(_ slot: CacheSlot) {
        if slot.retained, let cell = slot.cell {
            Unmanaged<AnyObject>.fromOpaque(cell).release()
        }
    }

    func observeExit(by storage: some ThreadExitObserver) {
        let key = ObjectIdentifier(storage)
        guard observers[key]?.storage == nil else { return }
        // A long-lived thread may outlive many Locals: forget the ones that are gone.
        if observers.count >= observersBeforeFilter {
            observers = observers.filter { $0.value.storage != nil }
            observersBeforeFilter = max(16, 2 * observers.count)
        }
        observers[key] = Observer(storage: storage)
    }

    /// The Locals with values of this thread's own (see `Cell.isListed`), for snapshots: kept by
    /// this thread only, forgetting Locals that are gone as they grow. `.thread` Locals apart, the
    /// only ones a capture inside a task takes of its thread.
    @exclusivity(unchecked) private(set) var listed: [SnapshotOps] = []
    @exclusivity(unchecked) private(set) var listedThreadLocals: [SnapshotOps] = []
    /// The ids of the Locals in both lists: a Local is listed once, however often a reset makes
    /// its cell anew, and a search of the lists made listing n Locals on one thread cost n².
    @exclusivity(unchecked) private var listedIDs: Set<UInt64> = []

    func list(_ local: SnapshotOps) {
        guard listedIDs.insert(local.localID).inserted else { return }
        if local.holdsThreadValues {
            Self.append(local, to: &listedThreadLocals, ids: &listedIDs)
        } else {
            Self.append(local, to: &listed, ids: &listedIDs)
        }
    }

    private static func append(_ local: SnapshotOps, to list: inout [SnapshotOps], ids: inout Set<UInt64>) {
        if list.count >= 8, list.count.nonzeroBitCount == 1 {
            list.removeAll { ops in
                guard !ops.isAlive() else { return false }
                ids.remove(ops.localID)
                return true
            }
        }
        list.append(local)
    }

    func isInitializing(_ local: ObjectIdentifier, _ key: OwnerKey) -> Bool {
        !initializing.isEmpty && initializing.contains { $0.local == local && $0.key == key }
    }

    func isInitializingSession(_ table: ObjectIdentifier, _ key: AnyHashable) -> Bool {
        initializingSessions.contains { $0.table == table && $0.key == key }
    }

    /// The calling thread's context, created on its first use.
    @usableFromInline static var current: ThreadContext {
        if let raw = Platform.value(for: pthreadKey) {
            return Unmanaged<ThreadContext>.fromOpaque(raw).takeUnretainedValue()
        }
        let context = ThreadContext()
        Platform.setValue(Unmanaged.passRetained(context).toOpaque(), for: pthreadKey)
        return context
    }

    /// `current`, not retained: the thread's key holds it for as long as the thread runs.
    static var currentUnmanaged: Unmanaged<ThreadContext> {
        if let raw = Platform.value(for: pthreadKey) {
            return Unmanaged<ThreadContext>.fromOpaque(raw)
        }
        return Unmanaged.passUnretained(current)
    }

    /// The library's one thread-specific key: each thread's context, released when it exits.
    static let pthreadKey = Platform.makeObjectKey()
}
