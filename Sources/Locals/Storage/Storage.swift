public import Synchronization

/// The storage engine of one ``Local``: every value it holds, for every task, thread and session,
/// and the one rule for when a value may be found without a lock.
///
/// **Tasks and threads** (`.task` and `.thread`): each task or thread that touches the Local owns
/// a `Cell`, in a table under this storage's lock. The cell's route says where the owner's
/// accesses go: its own value, a scope it opened, or the scope it inherited (`.shared`,
/// `.overlay`). A steady-state access finds its cell in the calling thread's lookup cache
/// (`ThreadContext`) with no lock and no reference counting:
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
/// **Sessions** (custom discriminators): see `SessionStore`, whose slots retain their cell.
///
/// Nothing of user code (initializers, deinits) runs while a lock of this type is held: removed
/// cells and replaced values are released after it.
@usableFromInline
final class Storage<Value: Sendable>: @unchecked Sendable, ThreadExitObserver {
    // @unchecked: `tables` is only touched through its lock; the rest is immutable or atomic.

    @usableFromInline
    enum Kind: UInt8, Sendable {
        case task, thread, custom
    }

    @usableFromInline let kind: Kind
    /// Never reused by another Local: names this storage in the threads' lookup caches.
    @usableFromInline let localID = LocalIDs.next()
    /// Bumped whenever a cell is removed while its owner may still run.
    @usableFromInline let epoch = Atomic<UInt>(0)
    /// The library's pthread key, copied here so the fast path reads a field instead of running a
    /// global's one-time initialization check on every access.
    @usableFromInline let pthreadKey = ThreadContext.pthreadKey
    /// The scope chain's task-local (`ScopeChain.key`), copied here for the same reason.
    @usableFromInline let chainKey = ScopeChain.key
    /// The values of a custom discriminator's keys.
    @usableFromInline let sessions: (any SessionStore<Value>)?
    /// The cached session lookup of `sessions`, specialized for the discriminator (see
    /// `SessionTable`).
    @usableFromInline let currentSessionCell: SessionLookup?
    /// Where a snapshot's `run` made a captured session the current one (see `SessionOverride`):
    /// how many such overrides exist now, anywhere, and the one the running task sees.
    @usableFromInline let sessionOverrides = Atomic<Int>(0)
    @usableFromInline let sessionOverride = TaskLocal<SessionOverride<Value>?>(wrappedValue: nil)
    let initialValue: @Sendable () -> Value
    /// The policy of this Local's scopes where the scope names none.
    @usableFromInline let inheritance: Inheritance
    /// The name the Local was given, for listings.
    let name: String?
    /// The Local's name, if it has one, then its type, discriminator and policy: made once.
    @usableFromInline let description: String
    /// The discriminator's type name, for messages.
    let discriminatorName: String
    @usableFromInline let tables = Locked.make(Tables())
    /// This Local's snapshot operations (set once, by `registered()`, before the Local is used):
    /// what a context that touched it lists, for snapshots.
    @exclusivity(unchecked) @usableFromInline var ops: SnapshotOps?

    @usableFromInline
    struct Tables {
        @usableFromInline var tasks = AddressTable<Cell<Value>>()
        @usableFromInline var threads: [UInt64: Cell<Value>] = [:]
        /// Cells removed by someone other than their owner, which the owner may be reading through
        /// its lookup cache right now (see the type's documentation).
        var parked: [Cell<Value>] = []
        var parkedCursor = 0
    }

    /// How many cells each first touch looks at for ended tasks.
    static var sweepBudget: Int { 4 }

    /// A storage for `discriminator`. Inlinable, so that a custom discriminator's session lookup
    /// is specialized where the Local is made.
    @inlinable
    static func make<D: Discriminator>(
        _ discriminator: D, inheritance: Inheritance, name: String?, initialValue: @escaping @Sendable () -> Value
    ) -> Storage<Value> {
        let about = About(discriminator: D.self, inheritance: inheritance, name: name)
        switch discriminator.valueStorage.kind {
        case .task:
            return Storage(.task, about, initialValue, sessions: nil, currentSessionCell: nil).registered()
        case .thread:
            return Storage(.thread, about, initialValue, sessions: nil, currentSessionCell: nil).registered()
        case .key:
            break
        }
        let table = SessionTable<D, Value>(discriminator)
        let lookup = SessionLookup(
            currentCell: { storage in
                Unmanaged<Storage<Value>>.fromOpaque(storage)._withUnsafeGuaranteedRef { storage in
                    table.currentCell(storage).map { Unmanaged.passRetained($0).toOpaque() }
                }
            },
            existingCell: { storage in
                Unmanaged<Storage<Value>>.fromOpaque(storage)._withUnsafeGuaranteedRef { storage in
                    table.existingCell(storage).map { Unmanaged.passRetained($0).toOpaque() }
                }
            }
        )
        return Storage(.custom, about, initialValue, sessions: table, currentSessionCell: lookup).registered()
    }

    /// Adds this storage to the live Locals that snapshots capture, with a capture made here,
    /// where the value type is concrete (see `Storage+Snapshots`).
    @inlinable
    func registered() -> Storage<Value> {
        let ops = snapshotOps()
        self.ops = ops
        LiveLocals.add(localID, ops, isSession: kind == .custom)
        return self
    }

    /// What a storage says about its Local.
    @usableFromInline
    struct About {
        let discriminator: Any.Type
        let inheritance: Inheritance
        let name: String?

        @usableFromInline
        init(discriminator: Any.Type, inheritance: Inheritance, name: String?) {
            self.discriminator = discriminator
            self.inheritance = inheritance
            self.name = name
        }
    }

    @usableFromInline
    init(
        _ kind: Kind, _ about: About, _ initialValue: @escaping @Sendable () -> Value,
        sessions: (any SessionStore<Value>)?,
        currentSessionCell: SessionLookup?
    ) {
        self.kind = kind
        self.initialValue = initialValue
        discriminatorName = String(describing: about.discriminator)
        inheritance = about.inheritance
        name = about.name
        let named = about.name.map { "\"\($0)\", " } ?? ""
        description = "Local<\(Value.self)>(\(named)\(discriminatorName), inheritance: .\(about.inheritance))"
        self.sessions = sessions
        self.currentSessionCell = currentSessionCell
    }

    deinit {
        LiveLocals.remove(localID)
        let cells = tables.withLock { tables in
            (tables.tasks.all(), tables.threads, tables.parked)
        }
        withExtendedLifetime(cells) {}
        sessions?.releaseAll()
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
        if kind == .task, let task = TaskIdentity.current {
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
    /// else resolved, and made on first touch.
    @inlinable
    @inline(__always)
    func withCell<R>(_ body: (Cell<Value>) throws -> R) rethrows -> R {
        if let cell = cachedCell() {
            return try cell._withUnsafeGuaranteedRef(body)
        }
        return try body(resolveCell())
    }

    /// The running task's or thread's key, and the names its cache slots use.
    @inlinable
    func currentOwner(_ context: ThreadContext) -> (owner: OwnerKey, cacheAddress: UInt, cacheID: UInt64) {
        if kind == .task, let task = TaskIdentity.current {
            return (OwnerKey(task), task.address, task.id)
        }
        return (OwnerKey(context.id), 0, 0)
    }

    /// The running context's cell, found under the lock or made on first touch, and cached. Also
    /// releases whatever was parked for the running context.
    @usableFromInline
    func resolveCell() -> Cell<Value> {
        // The thread's context, unretained: the thread's key holds it while the thread runs.
        ThreadContext.currentUnmanaged._withUnsafeGuaranteedRef { context in
            let (owner, cacheAddress, cacheID) = currentOwner(context)
            // Read the epoch before the lookup: a removal after it makes the cached entry stale.
            let epoch = self.epoch.load(ordering: .relaxed)
            let index = ThreadContext.slotIndex(local: localID, address: cacheAddress)
            let cell: Cell<Value>
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
                } else {
                    (cell, madeInitial) = makeCell(for: owner, context: context)
                }
            }
            context.store(
                CacheSlot(
                    local: localID, address: cacheAddress, id: cacheID, epoch: epoch, stamp: context.runStamp,
                    cell: Unmanaged.passUnretained(cell).toOpaque()
                ),
                at: index
            )
            if kind == .task, let run = context.run(of: owner) {
                // A cell just made from the initializer: a view from the initial value (a Local the
                // snapshot holds nothing of) takes the same one, with no second initializer call.
                run._withUnsafeGuaranteedRef { enterRunView(cell, $0, madeInitial: madeInitial, epoch: epoch) }
                if self.epoch.load(ordering: .relaxed) != epoch {
                    // A removal while the view went in place (a discard from elsewhere): this cell
                    // may be the one it took away; the running context's cell now has the view.
                    return resolveCell()
                }
            }
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
        if kind == .task, context.run(of: owner) != nil {
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

    @inlinable
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
