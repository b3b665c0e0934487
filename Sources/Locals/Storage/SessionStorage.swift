public import Synchronization

/// The backend of a ``Local`` with a custom discriminator: one value per key the discriminator
/// returns (a session), kept in a `SessionStore` by the key itself, and found through the calling
/// thread's lookup cache (see below). Every access locks the session's cell, reads or writes the
/// value in place, unlocks, and only then releases what it replaced.
///
/// A snapshot captures the session itself: inside its `run` that session is the current one
/// (`SessionOverride`), whatever the discriminator says.
@usableFromInline
final class SessionStorage<Value: Sendable>: Storage, @unchecked Sendable {
    // @unchecked: every stored property is immutable or atomic (`ops` is set once, before use);
    // the sessions lock themselves.

    @usableFromInline let facts: LocalFacts<Value>
    @usableFromInline let localID: UInt64
    @exclusivity(unchecked) @usableFromInline var ops: SnapshotOps?

    /// The library's pthread key, copied here so the fast path reads a field instead of running a
    /// global's one-time initialization check on every access.
    @usableFromInline let pthreadKey = ThreadContext.pthreadKey
    /// The values of the discriminator's keys.
    @usableFromInline let sessions: any SessionStore<Value>
    /// The scopes open on each session (see `SwappedScopes`).
    let openScopes = OpenScopeTable<AnyHashable>()
    /// The cached session lookup of `sessions`, specialized for the discriminator (see
    /// `SessionTable`).
    @usableFromInline let currentSessionCell: SessionLookup
    /// Where a snapshot's `run` made a captured session the current one (see `SessionOverride`):
    /// how many such overrides exist now, anywhere, and the one the running task sees.
    @usableFromInline let sessionOverrides = Atomic<Int>(0)
    @usableFromInline let sessionOverride = TaskLocal<SessionOverride<Value>?>(wrappedValue: nil)
    /// How a capture asks the discriminator once for every Local of its type (see
    /// `SessionTable.askedOnce`); nil where it asks this Local itself.
    @usableFromInline let askedOnce: SessionAsk?

    /// A storage for `discriminator`'s sessions. Inlinable, so that the session lookup is
    /// specialized for the discriminator where the Local is made.
    @inlinable
    convenience init<D: Discriminator>(_ discriminator: D, _ facts: LocalFacts<Value>) {
        let table = SessionTable<D, Value>(discriminator)
        let lookup = SessionLookup(
            currentCell: { storage in
                Unmanaged<SessionStorage<Value>>.fromOpaque(storage)._withUnsafeGuaranteedRef { storage in
                    table.currentCell(storage).map { Unmanaged.passRetained($0).toOpaque() }
                }
            },
            existingCell: { storage in
                Unmanaged<SessionStorage<Value>>.fromOpaque(storage)._withUnsafeGuaranteedRef { storage in
                    table.existingCell(storage).map { Unmanaged.passRetained($0).toOpaque() }
                }
            }
        )
        self.init(table, lookup, facts, askedOnce: SessionTable<D, Value>.askedOnce(discriminator))
    }

    @usableFromInline
    init(
        _ sessions: any SessionStore<Value>, _ lookup: SessionLookup, _ facts: LocalFacts<Value>,
        askedOnce: SessionAsk?
    ) {
        self.sessions = sessions
        self.askedOnce = askedOnce
        currentSessionCell = lookup
        self.facts = facts
        localID = facts.localID
    }

    deinit {
        LiveLocals.remove(localID)
        sessions.releaseAll()
    }

    /// Adds this storage to the live Locals; to those a capture asks for their session where
    /// `capturedBySnapshots` (a ``ValueStorage/perKey`` discriminator's; a
    /// ``ValueStorage/perCarriedKey`` one's key is carried by the snapshot itself).
    @inlinable
    func registered(capturedBySnapshots: Bool) -> SessionStorage<Value> {
        register(snapshotOps(), isSession: true, captured: capturedBySnapshots, askedOnce: askedOnce)
        return self
    }

    // MARK: Access
    //
    // Each finds the session's cell locked (no closure: the key path is applied inline, so that
    // it never builds the key path object), reads or writes in place, unlocks, then releases what
    // it replaced: its deinit may use this Local.

    /// One part of the current session's value; the initializer's value, unstored, with no key.
    @inlinable
    @inline(__always)
    func read<T>(_ keyPath: KeyPath<Value, T>) -> T {
        guard let cell = lockedSessionCell() else {
            return facts.makeInitialValue(for: .noKey)[keyPath: keyPath]
        }
        defer { cell.unlock() }
        return cell.value.pointee[keyPath: keyPath]
    }

    /// Writes one part of the current session's value; stops the program with no key.
    @inlinable
    @inline(__always)
    func write<T>(_ keyPath: WritableKeyPath<Value, T>, _ newValue: T) {
        guard let cell = lockedSessionCell() else { facts.missingKeyForWrite() }
        let replaced = cell.value.pointee[keyPath: keyPath]
        cell.value.pointee[keyPath: keyPath] = newValue
        cell.unlock()
        withExtendedLifetime(replaced) {}
    }

    /// The current session's whole value; the initializer's value, unstored, with no key.
    @inlinable
    func load() -> Value {
        guard let cell = lockedSessionCell() else { return facts.makeInitialValue(for: .noKey) }
        defer { cell.unlock() }
        return cell.value.pointee
    }

    /// Replaces the current session's whole value; stops the program with no key.
    @inlinable
    func store(_ newValue: Value) {
        guard let cell = lockedSessionCell() else { facts.missingKeyForWrite() }
        var replaced = newValue
        swap(&replaced, &cell.value.pointee)
        cell.unlock()
        withExtendedLifetime(replaced) {}
    }

    // MARK: Reset and discard

    /// Whether the running context has a key (see ``Local/hasCurrentKey``).
    var hasCurrentKey: Bool {
        currentSessionOverride() != nil || sessions.hasCurrentKey()
    }

    /// Drops the running context's session (see ``Local/reset()``).
    func resetCurrent() {
        sessions.resetCurrent(self)
    }

    /// Drops one session (see ``Local/discard(key:)``).
    func discard<K: Hashable & Sendable>(key: K) {
        sessions.discard(key: key, self)
    }

    // MARK: Snapshots

    /// This storage's snapshot operations: a capture takes the current session itself, and a run
    /// makes it current (see `SessionOverride`).
    @inlinable
    func snapshotOps() -> SnapshotOps {
        let weakSelf = WeakReference(self)
        return makeSnapshotOps(
            holdsThreadValues: false,
            capture: { _ in
                (nil, weakSelf.object?.existingSessionCell().map { PartData.make(.session($0)) })
            },
            open: { data, slot in
                guard let storage = weakSelf.object else { return false }  // the Local is gone: nothing to put back
                let part = unsafeDowncast(data, to: PartData<Value>.self)
                var inPlace = PartInPlace<Value>(Unmanaged<AnyObject>.passRetained(storage), .session)
                inPlace.other = SessionOverride(part.session.unsafelyUnwrapped, storage)
                PartInPlace.store(inPlace, at: slot)
                return true
            }
        )
    }
}

extension SessionStorage {
    // MARK: Finding the session

    /// The running context's session cell, locked, with a live value; nil where the
    /// discriminator has no current key. The caller reads or writes `value.pointee` in place and
    /// unlocks, then releases whatever it replaced. (No closure: the caller applies its key path
    /// inline, so that it never builds the key path object.)
    @inlinable
    func lockedSessionCell() -> SessionCell<Value>? {
        if let override = currentSessionOverride() {
            return lockedSessionCell(of: override)
        }
        // Unretained: `self` keeps the lookup alive, and a retain here would be a write to memory
        // that every thread reading this Local shares.
        let lookup = Unmanaged.passUnretained(currentSessionCell)
        let me = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        while true {
            guard let raw = lookup._withUnsafeGuaranteedRef({ $0.currentCell(me) }) else { return nil }
            let cell = Unmanaged<SessionCell<Value>>.fromOpaque(raw).takeRetainedValue()
            cell.lock()
            if cell.isLive {
                return cell
            }
            cell.unlock()
            forgetSessionCell(cell)
        }
    }

    // MARK: The session lookup cache
    //
    // Each thread caches up to two sessions per Local (two slots of its `ThreadContext`), each
    // holding a retain on its cell, so that a steady-state access compares the current key with
    // the cached cell's key and goes straight to that cell's lock: no table, no hashing. A session
    // removed meanwhile (`discard(key:)`, `reset()`) is emptied in place: a thread whose cache
    // still holds the cell finds it empty, forgets it and looks again. The retain keeps the cell's
    // memory valid however long a cache holds it; the value itself is released at once.

    /// The cached cell of the session `key`, if the calling thread's cache holds it.
    @inlinable
    func cachedSessionCell<Key: Hashable & Sendable>(
        _ key: Key, as _: KeyedSessionCell<Key, Value>.Type, _ context: ThreadContext
    ) -> KeyedSessionCell<Key, Value>? {
        let first = ThreadContext.slotIndex(local: localID, address: 0)
        return cachedSessionCell(key, at: first, context) ?? cachedSessionCell(key, at: first ^ 1, context)
    }

    @inlinable
    func cachedSessionCell<Key: Hashable & Sendable>(
        _ key: Key, at index: Int, _ context: ThreadContext
    ) -> KeyedSessionCell<Key, Value>? {
        let slot = context.slots[index]
        guard slot.local == localID, let raw = slot.cell else { return nil }
        // The slot retains the cell, and this Local's slots hold only its own session cells. The
        // key is compared before any retain: the cell may be another session's, whose threads
        // write its reference count all the time.
        let cell = Unmanaged<KeyedSessionCell<Key, Value>>.fromOpaque(raw)
        return cell._withUnsafeGuaranteedRef { $0.key == key } ? cell.takeUnretainedValue() : nil
    }

    /// Caches `cell` in one of this Local's two slots: an empty or foreign one, or else the first.
    func cacheSessionCell(_ cell: SessionCell<Value>, _ context: ThreadContext) {
        let first = ThreadContext.slotIndex(local: localID, address: 0)
        let index = context.slots[first].local == localID && context.slots[first ^ 1].local != localID
            ? first ^ 1 : first
        context.store(CacheSlot(local: localID, cell: Unmanaged.passRetained(cell).toOpaque(), retained: true), at: index)
    }

    /// Forgets a cached session cell that was found empty, so that the next access looks afresh.
    @usableFromInline
    func forgetSessionCell(_ cell: SessionCell<Value>) {
        let context = ThreadContext.current
        let first = ThreadContext.slotIndex(local: localID, address: 0)
        let raw = Unmanaged.passUnretained(cell).toOpaque()
        for index in [first, first ^ 1] where context.slots[index].local == localID && context.slots[index].cell == raw {
            context.store(CacheSlot(), at: index)
        }
    }

    /// Changes the running context's session value in one atomic step, on a copy that replaces it
    /// at the end (in the key's new storage if the body dropped it); what it replaces goes after the lock.
    @usableFromInline
    func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        guard let cell = lockedSessionCell() else { facts.missingKeyForWrite() }
        var updated = cell.value.pointee
        let result: R
        do {
            result = try body(&updated)
        } catch {
            cell.unlock()
            throw error
        }
        let current = liveSessionCell(cell)
        swap(&updated, &current.value.pointee)
        current.unlock()
        withExtendedLifetime(updated) {}
        return result
    }
}

extension SessionStorage {
    /// The session override the running task sees, if any.
    @inlinable
    @inline(__always)
    func currentSessionOverride() -> SessionOverride<Value>? {
        sessionOverrides.load(ordering: .relaxed) != 0 ? sessionOverride.get() : nil
    }

    /// The running context's session cell if it has one, made on no first touch. Inside a run
    /// whose session was discarded and not touched since, the captured (empty) cell: it still
    /// names the session, which a snapshot captured here then carries on.
    ///
    /// Inlinable, so that a capture (which asks every session Local) runs it specialized.
    @inlinable
    func existingSessionCell() -> SessionCell<Value>? {
        if let override = currentSessionOverride() {
            return sessions.existingCell(sameKeyAs: override.cell) ?? override.cell
        }
        let me = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        guard let cell = currentSessionCell.existingCell(me) else { return nil }
        return Unmanaged<SessionCell<Value>>.fromOpaque(cell).takeRetainedValue()
    }

    /// `cell` (locked) if it is still live, else the running context's session cell now, locked:
    /// user code ran since `cell` was found (a scope's change, the body of `update`), and may
    /// have dropped the session (`reset()`, `discard(key:)`), whose key then has new storage.
    func liveSessionCell(_ cell: SessionCell<Value>) -> SessionCell<Value> {
        if cell.isLive {
            return cell
        }
        cell.unlock()
        guard let current = lockedSessionCell() else { facts.missingKeyForWrite() }
        return current
    }

    /// The live cell of an override's session, locked: the captured one, or, once that was
    /// discarded, the key's cell now (made on first touch).
    @usableFromInline
    func lockedSessionCell(of override: SessionOverride<Value>) -> SessionCell<Value> {
        var cell = override.cell
        while true {
            cell.lock()
            if cell.isLive {
                return cell
            }
            cell.unlock()
            forgetSessionCell(cell)
            cell = sessions.cell(sameKeyAs: override.cell, self)
        }
    }
}

/// A custom discriminator's cached session lookup, made where the discriminator and value types
/// are concrete: given a `SessionStorage` (unretained), the running context's session cell (retained), or
/// nil where the discriminator has no key. In a class of its own, with raw pointers in its type,
/// because a closure stored in a generic class is kept at the most general abstraction, and
/// specialized code then calls it through a reabstraction thunk allocated afresh on every call.
///
/// `existingCell` is the same without making the session: what a snapshot's capture asks.
@usableFromInline
final class SessionLookup: Sendable {
    @usableFromInline let currentCell: @Sendable (UnsafeRawPointer) -> UnsafeMutableRawPointer?
    @usableFromInline let existingCell: @Sendable (UnsafeRawPointer) -> UnsafeMutableRawPointer?

    @usableFromInline
    init(
        currentCell: @escaping @Sendable (UnsafeRawPointer) -> UnsafeMutableRawPointer?,
        existingCell: @escaping @Sendable (UnsafeRawPointer) -> UnsafeMutableRawPointer?
    ) {
        self.currentCell = currentCell
        self.existingCell = existingCell
    }
}
