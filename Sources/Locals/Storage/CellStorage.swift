public import Synchronization

/// The backend of a `.task` or `.thread` ``Local``: every value it holds, for every task and
/// thread, and the one rule for when a value may be found without a lock.
///
/// Each task or thread that touches the Local owns a `Cell`, in a table under this storage's lock.
/// The cell's route says where the owner's accesses go: its own value, a scope it opened, or the
/// scope it inherited (`.shared`, `.overlay`). A steady-state access finds its cell in the calling
/// thread's lookup cache (`ThreadContext`) with no lock and no reference counting:
///
/// - A cache slot names the Local (by an id no other Local ever gets), the task (its address and
///   its 64-bit id, which no other task ever gets; address 0 for the thread itself) and this
///   storage's epoch when it was cached, and points to the cell without retaining it.
/// - A cached cell is used only while its slot's names match the running task exactly and the
///   epoch is unchanged. The epoch is bumped whenever a cell is removed while its owner may still
///   run (`reset`, `discard`, a `.thread` scope restored from elsewhere), so a matching slot always
///   points to a live cell of the running task. A cell whose owner has ended (a sweep, a reused
///   address, a released scope) is freed with no bump: its owner's id never runs again.
/// - A cell removed by someone other than its owner may be in use by the owner right now, so it
///   is parked here, and released at the owner's next touch of the Local (the bumped epoch sends
///   that touch here), or once the owner has ended, or when the thread exits.
///
/// Ended tasks are found without any hook: each task's cell holds the task's pin (a
/// `TaskRecord`), and every first touch of a new task looks at a few cells, from where the last
/// look stopped, and frees those whose task has ended. In a steady workload only a handful of
/// ended tasks are held; after a burst, each later first touch retires some.
///
/// A `.task` Local keys its cells by the running task, and by the thread outside tasks
/// (`holdsTasks`); a `.thread` Local always by the thread. That is the only difference between
/// the two: the rest (scopes, inheritance, snapshots) follows from the cells' owners.
@usableFromInline
final class CellStorage<Value: Sendable>: Storage, @unchecked Sendable, ThreadExitObserver {
    // @unchecked: `tables` is only touched through its lock; the rest is immutable or atomic.

    /// Whether cells are keyed by the running task (`.task`; by the thread outside tasks), or
    /// always by the thread (`.thread`).
    @usableFromInline let holdsTasks: Bool
    @usableFromInline let facts: LocalFacts<Value>
    @usableFromInline let localID: UInt64
    @exclusivity(unchecked) @usableFromInline var ops: SnapshotOps?
    /// Bumped whenever a cell is removed while its owner may still run.
    @usableFromInline let epoch = Atomic<UInt>(0)
    /// The library's pthread key, copied here so the fast path reads a field instead of running a
    /// global's one-time initialization check on every access.
    @usableFromInline let pthreadKey = ThreadContext.pthreadKey
    /// The scope chain's task-local (`ScopeChain.key`), copied here for the same reason.
    @usableFromInline let chainKey = ScopeChain.key
    /// Whether synchronous scopes share a binding (`BindingInPlace.isConfirmed`), copied here for
    /// the same reason.
    @usableFromInline let bindsInPlace = BindingInPlace.isConfirmed
    let tables = Locked.make(Tables())
    /// The swapped scopes open on each key (see `SwappedScopes`).
    let openScopes = OpenScopeTable<OwnerKey>()

    struct Tables {
        var tasks = AddressTable<Cell<Value>>()
        var threads: [UInt64: Cell<Value>] = [:]
        /// Cells removed by someone other than their owner, which the owner may be reading through
        /// its lookup cache right now (see the type's documentation).
        var parked: [Cell<Value>] = []
        var parkedCursor = 0
    }

    /// How many cells each first touch looks at for ended tasks.
    static var sweepBudget: Int { 4 }

    @usableFromInline
    init(holdsTasks: Bool, _ facts: LocalFacts<Value>) {
        self.holdsTasks = holdsTasks
        self.facts = facts
        localID = facts.localID
    }

    deinit {
        LiveLocals.remove(localID)
        let cells = tables.withLock { tables in
            (tables.tasks.all(), tables.threads, tables.parked)
        }
        withExtendedLifetime(cells) {}
    }

    // MARK: Finding the running context's cell

    /// The running context's cell from the calling thread's lookup cache, if the rule above says
    /// it may be used; nil sends the caller to `resolveCell()`. No lock, no retain.
    @inlinable
    @inline(__always)
    func cachedCell() -> Unmanaged<Cell<Value>>? {
        cachedCell(epoch: epoch.load(ordering: .relaxed))
    }

    /// `cachedCell()`, with the epoch read by the caller: the slot must have been cached at it.
    @inlinable
    @inline(__always)
    func cachedCell(epoch: UInt) -> Unmanaged<Cell<Value>>? {
        var address: UInt = 0
        var id: UInt64 = 0
        if holdsTasks, let task = TaskIdentity.current {
            address = task.address
            id = task.id
        }
        guard let context = ThreadContext.existing(key: pthreadKey) else { return nil }
        let (slots, stamp) = context._withUnsafeGuaranteedRef { ($0.slots, $0.runStamp) }
        let slot = slots + ThreadContext.slotIndex(local: localID, address: address)
        guard slot.pointee.local == localID, slot.pointee.address == address, slot.pointee.id == id,
            slot.pointee.epoch == epoch, slot.pointee.stamp == stamp, let cell = slot.pointee.cell
        else {
            return nil
        }
        return Unmanaged.fromOpaque(cell)
    }

    /// Runs `body` on the running context's cell (a task's or thread's), found in the cache or
    /// else resolved, and made on first touch; for a read (`reading`), past the cache and inside
    /// a synchronous snapshot run, maybe a cell of the run's that reads the captured scope in
    /// place (see `cellPastCache`). One function for reads and writes, with the choice in an
    /// argument, so that the compiler inlines both as one: two near-identical ones, each inlined
    /// at its call sites, made it give up inlining writes in functions that also read.
    @inlinable
    @inline(__always)
    func withCell<R>(reading: Bool = false, _ body: (Cell<Value>) throws -> R) rethrows -> R {
        if let cell = cachedCell() {
            return try cell._withUnsafeGuaranteedRef(body)
        }
        let (cell, held) = cellPastCache(reading: reading)
        defer { withExtendedLifetime(held) {} }
        return try cell._withUnsafeGuaranteedRef(body)
    }

    // MARK: Access
    //
    // Each finds the running context's cell (in the cache, or resolved), reads or writes through
    // its route (`Access`), and releases what a write replaced only after: its deinit may use
    // this Local.

    /// One part of the running context's value.
    @inlinable
    @inline(__always)
    func read<T>(_ keyPath: KeyPath<Value, T>) -> T {
        withCell(reading: true) { cell in
            #if DEBUG
            noteRead(cell)
            #endif
            return Access.read(cell, keyPath)
        }
    }

    /// Writes one part of the running context's value.
    @inlinable
    @inline(__always)
    func write<T>(_ keyPath: WritableKeyPath<Value, T>, _ newValue: T) {
        let replaced = withCell { cell in
            noteWrite(cell)
            return Access.write(cell, keyPath, newValue)
        }
        withExtendedLifetime(replaced) {}
    }

    /// The running context's whole value.
    @inlinable
    func load() -> Value {
        withCell(reading: true) { cell in
            #if DEBUG
            noteRead(cell)
            #endif
            return Access.load(cell)
        }
    }

    /// The cell an access that missed the cache goes through: for a read inside a synchronous
    /// snapshot run, a cell of the run's that reads the captured scope in place, where that is
    /// what the running context would read (see `scopeToPeek`), pointed at it, with no retain (the
    /// run keeps it until it ends, and never evicts one it used); else the running context's own
    /// cell, found or made (`resolveCell`), and `held`, the reference that keeps it alive for the
    /// access.
    @inlinable
    @inline(never)
    func cellPastCache(reading: Bool) -> (cell: Unmanaged<Cell<Value>>, held: Cell<Value>?) {
        if reading, let cell = peekCell() {
            return (cell, nil)
        }
        let cell = resolveCell()
        return (Unmanaged.passUnretained(cell), cell)
    }

    /// Replaces the running context's whole value.
    @inlinable
    func store(_ newValue: Value) {
        let replaced = withCell { cell in
            noteWrite(cell)
            return Access.store(cell, newValue)
        }
        withExtendedLifetime(replaced) {}
    }

    /// Changes the running context's value in one atomic step (see ``Local/update(_:)``).
    @inlinable
    func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        // Held strongly: the body is user code, and may reset this very key.
        let cell = cachedCell()?.takeUnretainedValue() ?? resolveCell()
        noteWrite(cell)
        return try Access.update(cell, body)
    }

    /// The running task's or thread's key, and the names its cache slots use.
    func currentOwner(_ context: ThreadContext) -> (owner: OwnerKey, cacheAddress: UInt, cacheID: UInt64) {
        if holdsTasks, let task = TaskIdentity.current {
            return (task, task.address, task.id)
        }
        return (OwnerKey(context.id), 0, 0)
    }

    /// The running context's cell, found under the lock or made on first touch, and cached. Also
    /// releases whatever was parked for the running context.
    @usableFromInline
    func resolveCell() -> Cell<Value> {
        resolveCell(madeBefore: nil)
    }

    /// `resolveCell`; `madeBefore`, when it is again after a removal elsewhere made a run's view
    /// give up: the cell the first try made from the initializer. If that cell is found again, a
    /// view from the initial value still takes its value, so that the running context's first
    /// touch runs the initializer once.
    func resolveCell(madeBefore: Cell<Value>?) -> Cell<Value> {
        // The thread's context, unretained: the thread's key holds it while the thread runs.
        ThreadContext.currentUnmanaged._withUnsafeGuaranteedRef { context in
            let (owner, cacheAddress, cacheID) = currentOwner(context)
            if context.isInitializing(ObjectIdentifier(facts), owner) {
                // The initializer of this Local, for this very key, touches it: the documented stop,
                // where the key's cell exists already (a snapshot run's view runs the initializer).
                facts.reentrantInitializer(key: owner.description)
            }
            // Read the epoch before the lookup: a removal after it makes the cached entry stale.
            let epoch = self.epoch.load(ordering: .relaxed)
            let index = ThreadContext.slotIndex(local: localID, address: cacheAddress)
            let cell: Cell<Value>
            var made = false
            var madeInitial = false
            let slot = context.slots[index]
            if slot.local == localID, slot.address == cacheAddress, slot.id == cacheID, slot.epoch == epoch,
                let cached = slot.cell
            {
                // Cached before a snapshot run began on this thread (only the stamp differs): still
                // the running context's cell, by the cache's rule.
                cell = Unmanaged<Cell<Value>>.fromOpaque(cached).takeUnretainedValue()
            } else {
                var parked: [Cell<Value>] = []
                let found = tables.withLock { tables -> Cell<Value>? in
                    if !tables.parked.isEmpty {
                        parked = Self.takeParked(of: owner, from: &tables)
                    }
                    return Self.cell(of: owner, in: tables)
                }
                withExtendedLifetime(parked) {}
                if let found {
                    cell = found
                    madeInitial = found === madeBefore
                } else {
                    (cell, madeInitial) = makeCell(for: owner, context: context)
                    made = true
                }
            }
            if holdsTasks, let run = context.run(of: owner) {
                // A cell just made from the initializer: a view from the initial value (a Local the
                // snapshot holds nothing of) takes the same one, with no second initializer call.
                run._withUnsafeGuaranteedRef { enterRunView(cell, $0, made: made, madeInitial: madeInitial, epoch: epoch) }
                if self.epoch.load(ordering: .relaxed) != epoch {
                    // A removal while the view went in place (a discard from elsewhere): this cell
                    // may be the one it took away; the running context's cell now has the view.
                    let cell = resolveCell(madeBefore: madeInitial ? cell : nil)
                    context.viewInitial = nil  // what the retry did not take
                    return cell

                }
            }
            // Cached only now: an initializer that a view runs (a Local the snapshot holds nothing
            // of) and that touches this Local again comes back here, and stops (see above).
            context.store(
                CacheSlot(
                    local: localID, address: cacheAddress, id: cacheID, epoch: epoch, stamp: context.runStamp,
                    cell: Unmanaged.passUnretained(cell).toOpaque()
                ),
                at: index
            )
            return cell
        }
    }

    /// The running context's cell if it has one, without making it.
    @inlinable
    func existingCell() -> Cell<Value>? {
        if let cell = cachedCell() {
            return cell.takeUnretainedValue()
        }
        return existingCellSlowly()
    }

    /// `existingCell()` where the cache has no cell: looked up under the lock, and cached (a
    /// snapshot captured on a thread whose slot another Local took asks on every capture).
    @usableFromInline
    func existingCellSlowly() -> Cell<Value>? {
        let context = ThreadContext.current
        let (owner, cacheAddress, cacheID) = currentOwner(context)
        // Read the epoch before the lookup: a removal after it makes the cached entry stale.
        let epoch = self.epoch.load(ordering: .relaxed)
        guard let cell = tables.withLock({ Self.cell(of: owner, in: $0) }) else { return nil }
        if holdsTasks, context.run(of: owner) != nil {
            if context.isInitializing(ObjectIdentifier(facts), owner) {
                return nil  // the initializer of this key's view (a capture inside it): no view yet
            }
            return resolveCell()  // in the run's view, as every access inside the run
        }
        context.store(
            CacheSlot(
                local: localID, address: cacheAddress, id: cacheID, epoch: epoch, stamp: context.runStamp,
                cell: Unmanaged.passUnretained(cell).toOpaque()
            ),
            at: ThreadContext.slotIndex(local: localID, address: cacheAddress)
        )
        return cell
    }

    static func cell(of owner: OwnerKey, in tables: Tables) -> Cell<Value>? {
        if owner.isThread {
            return tables.threads[owner.id]
        }
        guard let cell = tables.tasks.entry(at: owner.address), cell.owner.id == owner.id else { return nil }
        return cell
    }

    static func takeParked(of owner: OwnerKey, from tables: inout Tables) -> [Cell<Value>] {
        var taken: [Cell<Value>] = []
        tables.parked.removeAll { cell in
            guard cell.owner == owner else { return false }
            taken.append(cell)
            return true
        }
        return taken
    }
}
