// Scopes of `.thread` Locals and custom discriminators: the scope changes the current key's value
// and puts the old one back when it ends. Nothing is inherited.

/// A backend whose scopes swap the current key's value in and out (`.thread`, sessions).
protocol SwappedScopes<Value>: AnyObject {
    associatedtype Value: Sendable
    /// What a scope restores.
    associatedtype Saved

    /// Changes the current key's value for a scope; returns what to restore. `change` runs on a
    /// copy with no lock held.
    func swapIn(_ change: (inout Value) -> Void) -> Saved

    /// Puts a scope's saved value back, into the key's storage as it is now: after a `reset()`
    /// inside the scope, into the storage a touch made again, or made now (the initializer runs
    /// again, as after any reset). A key discarded by `discard(key:)` while the scope was open
    /// gets nothing back, made again by a touch there or not: a scope never brings back a
    /// discarded session or an exited thread's value.
    func restore(_ saved: Saved)
}

/// The swapped scopes open on each key of a Local, and how many times each such key was
/// discarded while any was.
///
/// A scope notes the count when it opens and compares it when it ends: a discard in between,
/// whatever happened to the key's storage around it (reset, touched again, discarded again), means
/// the scope puts nothing back. A key has an entry only while a scope is open on it, so the table
/// never grows with keys that were discarded or never scoped. Its own lock, and a key type that is
/// known here (not the Local's value type), keep it off the storage's lock and out of generic code.
struct OpenScopeTable<Key: Hashable>: Sendable {
    private struct Entry {
        var count = 0
        var discards: UInt = 0
    }

    private let entries = Locked.make([Key: Entry]())

    /// Notes a scope opened on `key`; returns the discard count to hand back to `close`.
    func open(_ key: Key) -> UInt {
        entries.withLock { entries in
            guard let index = entries.index(forKey: key) else {
                entries[key] = Entry(count: 1)
                return 0
            }
            entries.values[index].count += 1
            return entries.values[index].discards
        }
    }

    /// Notes that a scope opened on `key` (when the count was `discards`) ended; returns whether
    /// the key was discarded meanwhile.
    func close(_ key: Key, openedAt discards: UInt) -> Bool {
        entries.withLock { entries in
            guard let index = entries.index(forKey: key) else {
                preconditionFailure("swift-locals: a scope ended that was never noted as open")
            }
            let entry = entries.values[index]
            if entry.count == 1 {
                entries.remove(at: index)
            } else {
                entries.values[index].count -= 1
            }
            return entry.discards != discards
        }
    }

    /// Notes a discard of `key`, for the scopes open on it (if any).
    func noteDiscard(_ key: Key) {
        entries.withLock { entries in
            if let index = entries.index(forKey: key) {
                entries.values[index].discards &+= 1
            }
        }
    }
}

/// What a `.thread` scope restores: the thread, its cell (held, so that the value can be put back
/// when the scope ends on another thread), its value before the scope, and the thread key's
/// discard count when the scope opened (see `OpenScopeTable`).
@usableFromInline
struct ThreadSaved<Value: Sendable> {
    let owner: OwnerKey
    let cell: Cell<Value>
    let value: Value
    let discards: UInt
}

extension CellStorage: SwappedScopes {
    /// A `.thread` scope (see `SwappedScopes`); the thread's cell is found again if `change`
    /// dropped it.
    @usableFromInline
    func swapIn(_ change: (inout Value) -> Void) -> ThreadSaved<Value> {
        let found = holdCell()
        var changed = found.cell.takeUnretainedValue().own.value
        change(&changed)
        let cell = (isStillHeld(found) ? found.cell : holdCell().cell).takeUnretainedValue().own
        swap(&changed, &cell.value)
        if !cell.isListed {
            list(cell)  // a value of the thread's own now: snapshots take it
        }
        let discards = openScopes.open(cell.owner)
        return ThreadSaved(owner: cell.owner, cell: cell, value: changed, discards: discards)
    }

    @usableFromInline
    func restore(_ saved: ThreadSaved<Value>) {
        guard !openScopes.close(saved.owner, openedAt: saved.discards) else {
            return  // discarded inside the scope
        }
        if isCurrent(saved.owner) {
            // After a reset inside the scope, the storage a touch made again, or one made now.
            let cell = existingCell() ?? holdCell().cell.takeUnretainedValue()
            var replaced = saved.value
            swap(&replaced, &cell.own.value)
            withExtendedLifetime(replaced) {}  // after the swap: its deinit may use this Local
        } else {
            // An async scope that ended on another thread: the owner may be reading its cell.
            replaceCell(of: saved.owner, with: saved.value)
        }
    }
}

extension SessionStorage: SwappedScopes {
    func swapIn(_ change: (inout Value) -> Void) -> SessionScopeSaved<Value> {
        sessions.swapIn(change, self)
    }

    func restore(_ saved: SessionScopeSaved<Value>) {
        sessions.restore(saved, self)
    }
}
