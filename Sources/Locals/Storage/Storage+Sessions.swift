extension Storage {
    // MARK: Sessions

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
        let lookup = Unmanaged.passUnretained(currentSessionCell.unsafelyUnwrapped)
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
    func sessionUpdate<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        guard let cell = lockedSessionCell() else { missingKeyForWrite() }
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

/// A custom discriminator's cached session lookup, made where the discriminator and value types
/// are concrete: given a `Storage` (unretained), the running context's session cell (retained), or
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
