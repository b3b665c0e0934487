import Synchronization

// Scopes of `.thread` Locals and custom discriminators: the scope changes the current key's value
// and puts the old one back when it ends. Nothing is inherited.

/// A backend whose scopes swap the current key's value in and out (`.thread`, sessions).
///
/// A scope ends by putting its saved value back into the key's storage as it is then: after a
/// `reset()` inside the scope, into the storage a touch made again, or made now (the initializer
/// runs again, as after any reset). A key discarded by `discard(key:)` (or a thread that exited)
/// while the scope was open gets nothing back, made again by a touch there or not: a scope never
/// brings back a discarded session or an exited thread's value. The backend's `OpenScopeTable`
/// tells which: `restore` asks it before putting the value back, and again after, in case a discard
/// came in between, when it takes the value out again. (Each backend has its own `restore`, where
/// the key type is concrete: in a generic one, every step would look up type metadata.)
protocol SwappedScopes<Value>: AnyObject {
    associatedtype Value: Sendable
    /// What a scope restores.
    associatedtype Saved

    /// Changes the current key's value for a scope; returns what to restore. `change` runs on a
    /// copy with no lock held. Notes the scope as open before it finds the storage it swaps into.
    func swapIn(_ change: (inout Value) -> Void) -> Saved

    /// Puts a scope's saved value back (see above).
    func restore(_ saved: Saved)
}

/// What a swapped scope saved: its key, its value before the scope, and where the key's discards
/// stood when it opened (see `OpenScopeTable`).
@usableFromInline
struct SwappedOut<Key: Hashable, Value> {
    let key: HashedKey<Key>
    let value: Value
    let opened: OpenScopeTable<Key>.Opened
}

/// A key with its hash, taken once, with no lock held: a session's key is user code, which may
/// use this very Local (a `hash(into:)` that discards it would wait on the lock it holds).
@usableFromInline
struct HashedKey<Key: Hashable>: Hashable {
    let base: Key
    let hash: Int

    init(_ base: Key) {
        self.base = base
        hash = base.hashValue
    }

    @usableFromInline
    static func == (a: HashedKey, b: HashedKey) -> Bool {
        a.hash == b.hash && a.base == b.base
    }

    @usableFromInline
    func hash(into hasher: inout Hasher) {
        hasher.combine(hash)
    }
}

/// The swapped scopes open on each key of a Local, and how many times each such key was
/// discarded while any was.
///
/// A scope notes the count when it opens and compares it when it ends: a discard in between,
/// whatever happened to the key's storage around it (reset, touched again, discarded again), means
/// the scope puts nothing back. A discard notes itself under this table's lock together with the
/// removal of the key's storage (`discard(_:removing:)`), so that a scope that opens or ends
/// meanwhile sees both or neither. A key has an entry only while a scope is open on it, so the
/// table never grows with keys that were discarded or never scoped. Its own lock, and a key type
/// that is known here (not the Local's value type), keep it off the storage's lock and out of
/// generic code.
final class OpenScopeTable<Key: Hashable>: @unchecked Sendable {
    // @unchecked: `entries` is only touched through its lock; `noted` is atomic.
    private struct Entry {
        var count = 0
        var discards: UInt = 0
    }

    /// Where the discards stood when a scope opened.
    struct Opened {
        /// The key's own count.
        let discards: UInt
        /// All keys' count (see `noted`).
        let noted: UInt
    }

    private let entries = Locked.make([HashedKey<Key>: Entry]())
    /// Every discard, of any key: a scope whose end finds it unchanged needs no lookup to know
    /// that its key was not discarded.
    private let noted = Atomic<UInt>(0)

    init() {}

    /// How many keys have a scope open now.
    var count: Int { entries.withLock { $0.count } }

    /// Notes a scope opened on `key`.
    func open(_ key: HashedKey<Key>) -> Opened {
        entries.withLock { entries in
            let noted = noted.load(ordering: .relaxed)  // changed only under the lock
            guard let index = entries.index(forKey: key) else {
                entries[key] = Entry(count: 1)
                return Opened(discards: 0, noted: noted)
            }
            entries.values[index].count += 1
            return Opened(discards: entries.values[index].discards, noted: noted)
        }
    }

    /// Whether `key` was discarded since a scope `opened` on it; the scope stays open.
    func wasDiscarded(_ key: HashedKey<Key>, since opened: Opened) -> Bool {
        if noted.load(ordering: .acquiring) == opened.noted {
            return false
        }
        return entries.withLock { entries in
            // No entry: a key that is not equal to itself (a NaN), which no discard can name.
            entries[key].map { $0.discards != opened.discards } ?? false
        }
    }

    /// Notes that a scope `opened` on `key` ended; returns whether the key was discarded meanwhile.
    func close(_ key: HashedKey<Key>, _ opened: Opened) -> Bool {
        entries.withLock { entries in
            guard let index = entries.index(forKey: key) else { return false }  // see above
            let entry = entries.values[index]
            if entry.count == 1 {
                entries.remove(at: index)
            } else {
                entries.values[index].count -= 1
            }
            return entry.discards != opened.discards
        }
    }

    /// Runs `removing` (which drops `key`'s storage) and notes the discard, both under the lock.
    func discard<R>(_ key: HashedKey<Key>, removing: () -> R) -> R {
        entries.withLock { entries in
            let removed = removing()
            if let index = entries.index(forKey: key) {
                entries.values[index].discards &+= 1
            }
            noted.add(1, ordering: .releasing)
            return removed
        }
    }
}

extension CellStorage: SwappedScopes {
    /// A `.thread` scope (see `SwappedScopes`); the thread's cell is found again if `change`
    /// dropped it, or a discard did before the scope was noted as open.
    @usableFromInline
    func swapIn(_ change: (inout Value) -> Void) -> SwappedOut<OwnerKey, Value> {
        var found = holdCell()
        let owner = HashedKey(found.cell._withUnsafeGuaranteedRef { $0.owner })
        let opened = openScopes.open(owner)
        if !isStillHeld(found) {
            found = holdCell()
        }
        var changed = found.cell.takeUnretainedValue().own.value
        change(&changed)
        let cell = (isStillHeld(found) ? found.cell : holdCell().cell).takeUnretainedValue().own
        cell.valueWillChange()
        swap(&changed, &cell.value)
        if !cell.isListed {
            list(cell)  // a value of the thread's own now: snapshots take it
        }
        return SwappedOut(key: owner, value: changed, opened: opened)
    }

    /// On the thread that opened the scope, into its cell (made now after a reset); from another
    /// thread (an async scope that ended elsewhere), into a new cell for that thread, which takes
    /// the old one's place (the owner may be reading it, so it is parked), unless the thread has
    /// exited.
    @usableFromInline
    func restore(_ saved: SwappedOut<OwnerKey, Value>) {
        if openScopes.wasDiscarded(saved.key, since: saved.opened) {
            _ = openScopes.close(saved.key, saved.opened)
            return
        }
        let owner = saved.key.base
        guard isCurrent(owner) else {
            let cell = replaceCell(of: owner, with: saved.value)
            if openScopes.close(saved.key, saved.opened) {
                withExtendedLifetime(removeCell(cell)) {}  // a discard came in between: out again
            }
            return
        }
        let cell = existingCell() ?? holdCell().cell.takeUnretainedValue()
        var replaced = saved.value
        cell.valueWillChange()
        swap(&replaced, &cell.own.value)
        if openScopes.close(saved.key, saved.opened) {
            cell.valueWillChange()
            swap(&replaced, &cell.own.value)  // a discard came in between: back as it was
        }
        withExtendedLifetime(replaced) {}  // after the swaps: its deinit may use this Local
    }
}

extension SessionStorage: SwappedScopes {
    func swapIn(_ change: (inout Value) -> Void) -> SwappedOut<AnyHashable, Value> {
        sessions.swapIn(change, self)
    }

    /// Into the session's cell, made now after a reset; nothing if it was discarded meanwhile.
    func restore(_ saved: SwappedOut<AnyHashable, Value>) {
        if openScopes.wasDiscarded(saved.key, since: saved.opened) {
            _ = openScopes.close(saved.key, saved.opened)
            return
        }
        let cell = sessions.storedCell(saved.key.base, self)
        var replaced: Value?
        cell.lock()
        if cell.isLive {
            replaced = saved.value
            swap(&replaced!, &cell.value.pointee)
        }
        cell.unlock()
        if openScopes.close(saved.key, saved.opened), replaced != nil {
            // A discard came in between: back as it was, if the session is still there.
            cell.lock()
            if cell.isLive {
                swap(&replaced!, &cell.value.pointee)
            }
            cell.unlock()
        }
        withExtendedLifetime(replaced) {}  // after the lock: its deinit may use this Local
    }
}
