/// The value of one session (one key of a custom discriminator), shared by every task and thread
/// whose discriminator returns that key: every access goes through its lock.
///
/// The value lives in memory of its own, so that an access reads or writes it in place with no
/// copy, and so that `take()` can release it at once while the cell itself lives on in some
/// thread's lookup cache, empty: whoever finds it there empty forgets it and looks again.
///
/// `@unchecked Sendable`: `value` and `isLive` are only touched with the lock held.
@usableFromInline
class SessionCell<Value: Sendable>: LockedBox, @unchecked Sendable {
    @usableFromInline final let value: UnsafeMutablePointer<Value>
    /// False once the session was discarded or reset (or its Local released).
    @exclusivity(unchecked) @usableFromInline final var isLive = true
    /// Keeps the subclass's key off the cache lines of the fields above, which the session's
    /// threads write on every access (its reference count, its lock): a thread of another session
    /// reads the key when it finds this cell in its lookup cache (see `KeyedSessionCell`).
    private let separation = CacheLinePadding()

    init(_ value: Value) {
        // Whole cache lines of its own: a thread reading this session must not share a line with
        // the counts and locks that threads of other sessions write.
        let bytes = (MemoryLayout<Value>.stride + 63) & ~63
        self.value = UnsafeMutableRawPointer.allocate(byteCount: max(bytes, 64), alignment: 64)
            .bindMemory(to: Value.self, capacity: 1)
        self.value.initialize(to: value)
    }

    deinit {
        if isLive {
            value.deinitialize(count: 1)
        }
        value.deallocate()
    }

    /// Empties the cell and hands back its value, to be released outside the lock.
    final func take() -> Value? {
        lock()
        defer { unlock() }
        guard isLive else { return nil }
        isLive = false
        return value.move()
    }

    /// The session's key, for listings.
    var keyDescription: String { "" }
}

/// A session cell with its key, which a cached lookup compares with the running context's key.
@usableFromInline
final class KeyedSessionCell<Key: Hashable & Sendable, Value: Sendable>: SessionCell<Value>, @unchecked Sendable {
    @usableFromInline let key: Key
    /// Keeps the next object the allocator places after this one off the key's cache line.
    private let padding = CacheLinePadding()

    init(_ value: Value, key: Key) {
        self.key = key
        super.init(value)
    }

    override var keyDescription: String { "\(key)" }
}

/// The sessions of a Local with a custom discriminator. The discriminator's key type is known only
/// to the conforming `SessionTable`, so `SessionStorage` (generic over the value alone) reaches it
/// through this protocol.
@usableFromInline
protocol SessionStore<Value>: AnyObject, Sendable {
    associatedtype Value: Sendable

    /// Whether the discriminator has a current key.
    func hasCurrentKey() -> Bool

    /// The live cell of the session `cell` belongs to, if that session has storage now, retained.
    func existingCell(sameKeyAs cell: SessionCell<Value>) -> SessionCell<Value>?

    /// The live cell of the session `cell` belongs to (made on first touch), retained: what a
    /// snapshot's `run` uses once the session it captured was discarded.
    func cell(sameKeyAs cell: SessionCell<Value>, _ storage: SessionStorage<Value>) -> SessionCell<Value>

    /// Drops `key`'s storage now; stops the program if `key` is not of the discriminator's type.
    func discard<K: Hashable & Sendable>(key: K, _ storage: SessionStorage<Value>)

    /// Drops the running context's session, if it has a key.
    func resetCurrent(_ storage: SessionStorage<Value>)

    /// Applies `change` to the running context's session (made on first touch), on a copy with no
    /// lock held; returns the session's key and the value the changed copy replaced: what a scope
    /// restores.
    func swapIn(_ change: (inout Value) -> Void, _ storage: SessionStorage<Value>) -> SwappedOut<AnyHashable, Value>

    /// The cell of the session `key` names, made now if it has none.
    func storedCell(_ key: AnyHashable, _ storage: SessionStorage<Value>) -> SessionCell<Value>

    /// Empties every session's cell: the Local is being released.
    func releaseAll()
}
