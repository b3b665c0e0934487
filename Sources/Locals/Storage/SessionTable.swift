import Synchronization

/// The sessions of a Local whose discriminator is `D`, kept by `D.Key` itself (no type erasure on
/// the access path), in shards with a lock each, so that two sessions contend only when their keys
/// fall in one shard, and never on the access path.
///
/// A steady-state access finds its session through the thread's lookup cache, by the rule that
/// `SessionStorage` keeps (see `SessionStorage.cachedSessionCell`); the table is for misses and first touches.
///
/// The cached lookup (`currentCell`) is inlinable and reached through a closure that the Local's
/// (inlinable) initializer makes where `D` and `Value` are concrete, so that it runs specialized
/// for them: in generic code, every call of `currentKey` would look up `Optional<D.Key>`'s
/// metadata, which costs more than the rest of the access.
@usableFromInline
final class SessionTable<D: Discriminator, Value: Sendable>: SessionStore, @unchecked Sendable {
    // @unchecked: `shards` is only touched through their locks; `discriminator` is Sendable.
    @usableFromInline typealias Cell = KeyedSessionCell<D.Key, Value>

    struct Shard {
        var cells: [D.Key: Cell] = [:]
        /// Keys whose initializer is running now, on some thread.
        var initializing: Set<D.Key> = []
    }

    @usableFromInline let discriminator: D
    let shards = (0..<16).map { _ in Locked.make(Shard()) }

    @usableFromInline
    init(_ discriminator: D) {
        self.discriminator = discriminator
    }

    func shard(_ key: D.Key) -> Locked<Shard> {
        shards[key.hashValue & 15]
    }

    /// The discriminator's current key. Stops the program, naming the discriminator, when
    /// `currentKey` recurses (it touches a Local whose discriminator calls it again).
    @inlinable
    func currentKey(_ context: ThreadContext) -> D.Key? {
        Self.currentKey(of: discriminator, context)
    }

    /// `discriminator.currentKey`, with the guard against a `currentKey` that recurses.
    @inlinable
    static func currentKey(of discriminator: D, _ context: ThreadContext) -> D.Key? {
        context.keyDepth += 1
        defer { context.keyDepth -= 1 }
        if context.keyDepth > 64 {
            recursingDiscriminator()
        }
        return discriminator.currentKey
    }

    /// What a capture asks once for all the Locals whose discriminator is of type `D`, where `D`
    /// has no stored properties (every instance is the same): whether any of them has a key now.
    /// Nil for a `D` with stored properties, whose Locals a capture asks one by one.
    @inlinable
    static func askedOnce(_ discriminator: D) -> SessionAsk? {
        guard MemoryLayout<D>.size == 0 else { return nil }
        return SessionAsk(discriminatorType: ObjectIdentifier(D.self)) { context in
            currentKey(of: discriminator, context) != nil
        }
    }

    @usableFromInline
    static func recursingDiscriminator() -> Never {
        fatalError(
            """
            swift-locals: \(D.self).currentKey touched a Local whose discriminator called \
            \(D.self).currentKey again, and so on without end. A discriminator's currentKey must not \
            read or write a Local with that same discriminator; compute the key from something else \
            (a @TaskLocal, a plain variable).
            """
        )
    }

    @inlinable
    func currentCell(_ storage: SessionStorage<Value>) -> SessionCell<Value>? {
        guard let context = ThreadContext.existing(key: storage.pthreadKey) else {
            return currentCellSlowly(storage)
        }
        return context._withUnsafeGuaranteedRef { context in
            guard let key = currentKey(context) else { return nil }
            return storage.cachedSessionCell(key, as: Cell.self, context) ?? lookUp(key, context, storage)
        }
    }

    /// `currentCell` on a thread that has no context yet.
    @usableFromInline
    func currentCellSlowly(_ storage: SessionStorage<Value>) -> SessionCell<Value>? {
        let context = ThreadContext.current
        guard let key = currentKey(context) else { return nil }
        return lookUp(key, context, storage)
    }

    private enum Lookup {
        case found(Cell)
        case mine
        case reentrant
    }

    /// Finds `key`'s cell, or makes it: once per key, with no lock held while the initializer
    /// runs. A context that needs the key meanwhile sleeps until it is ready.
    @usableFromInline
    func lookUp(_ key: D.Key, _ context: ThreadContext, _ storage: SessionStorage<Value>) -> Cell {
        let shard = shard(key)
        let me = ObjectIdentifier(self)
        let lookup = shard.waitForLock(until: { shard -> Lookup? in
            if let cell = shard.cells[key] { return .found(cell) }
            if shard.initializing.contains(key) {
                return context.isInitializingSession(me, AnyHashable(key)) ? .reentrant : nil
            }
            shard.initializing.insert(key)
            return .mine
        })
        let cell: Cell
        switch lookup {
        case .found(let found):
            cell = found
        case .reentrant:
            storage.facts.reentrantInitializer(key: "\(key)")
        case .mine:
            context.initializingSessions.append((me, AnyHashable(key)))
            let value = storage.facts.initialValue()
            context.initializingSessions.removeLast()
            cell = Cell(value, key: key)
            shard.withLock { shard in
                shard.cells[key] = cell
                shard.initializing.remove(key)
            }
            shard.wakeWaiters()
        }
        storage.cacheSessionCell(cell, context)
        return cell
    }

    /// The running context's session cell if the session exists, without making it. Inlinable:
    /// a snapshot asks every session Local on every capture, through a closure made where `D`
    /// is concrete (see `SessionLookup`).
    @inlinable
    func existingCell(_ storage: SessionStorage<Value>) -> SessionCell<Value>? {
        let context = ThreadContext.current
        guard let key = currentKey(context) else { return nil }
        return storage.cachedSessionCell(key, as: Cell.self, context) ?? storedCell(key)
    }

    /// `existingCell` past the lookup cache: the key's cell in its shard, if any. Out of line: a
    /// capture that gets this far has missed the cache, and takes a lock anyway.
    @usableFromInline
    func storedCell(_ key: D.Key) -> Cell? {
        shard(key).withLock { $0.cells[key] }
    }

    @usableFromInline
    func hasCurrentKey() -> Bool {
        currentKey(ThreadContext.current) != nil
    }

    @usableFromInline
    func existingCell(sameKeyAs cell: SessionCell<Value>) -> SessionCell<Value>? {
        let key = unsafeDowncast(cell, to: Cell.self).key
        return shard(key).withLock { $0.cells[key] }
    }

    @usableFromInline
    func cell(sameKeyAs cell: SessionCell<Value>, _ storage: SessionStorage<Value>) -> SessionCell<Value> {
        let key = unsafeDowncast(cell, to: Cell.self).key
        let context = ThreadContext.current
        return storage.cachedSessionCell(key, as: Cell.self, context) ?? lookUp(key, context, storage)
    }

    @usableFromInline
    func discard<K: Hashable & Sendable>(key: K, _ storage: SessionStorage<Value>) {
        guard let key = key as? D.Key else {
            fatalError(
                """
                swift-locals: discard(key:) on Local<\(Value.self)> was given a key of type \(K.self), but \
                its discriminator \(D.self) keys sessions by \(D.Key.self): no session could ever have \
                that key, so its value would be kept forever. Pass the \(D.Key.self) that \
                \(D.self).currentKey returns.
                """
            )
        }
        // Emptied under the open-scope table's lock: a scope on the session that opens or ends
        // meanwhile sees the discard together with its effect (see `OpenScopeTable`).
        let removed = storage.openScopes.discard(HashedKey(AnyHashable(key))) { take(key) }
        withExtendedLifetime(removed) {}
    }

    private func remove(_ key: D.Key) {
        withExtendedLifetime(take(key)) {}
    }

    /// Takes `key`'s cell out and empties it; returns both, to be released by the caller.
    private func take(_ key: D.Key) -> (SessionCell<Value>?, Value?) {
        let cell = shard(key).withLock { $0.cells.removeValue(forKey: key) }
        return (cell, cell?.take())
    }

    @usableFromInline
    func resetCurrent(_ storage: SessionStorage<Value>) {
        if let override = storage.currentSessionOverride() {
            remove(unsafeDowncast(override.cell, to: Cell.self).key)  // a snapshot's session, inside its `run`
            return
        }
        guard let key = currentKey(ThreadContext.current) else { return }
        remove(key)
    }

    /// `change` is user code: it runs on a copy, with no lock held (it may wait for another thread
    /// that uses this session, or reset it), and the copy replaces the session's value when it
    /// returns. So the change is not atomic with other contexts' writes: one made meanwhile is
    /// overwritten, and what the scope saves (and puts back) is the value it replaced. The scope is
    /// noted as open before the value is read (see `OpenScopeTable`).
    @usableFromInline
    func swapIn(_ change: (inout Value) -> Void, _ storage: SessionStorage<Value>) -> SwappedOut<AnyHashable, Value> {
        // The current session: a snapshot's, inside its `run`, or else the discriminator's.
        guard let first = storage.lockedSessionCell() else { storage.facts.missingKeyForWrite() }
        let key = AnyHashable(unsafeDowncast(first, to: Cell.self).key)
        first.unlock()
        let hashed = HashedKey(key)  // the key's hash is user code: no lock held
        let opened = storage.openScopes.open(hashed)
        first.lock()
        let cell = storage.liveSessionCell(first)
        var changed = cell.value.pointee
        cell.unlock()
        change(&changed)
        cell.lock()
        let current = storage.liveSessionCell(cell)
        swap(&changed, &current.value.pointee)
        current.unlock()
        return SwappedOut(key: hashed, value: changed, opened: opened)
    }

    /// The cell of the session `key` names, made now if it has none (after a reset).
    @usableFromInline
    func storedCell(_ key: AnyHashable, _ storage: SessionStorage<Value>) -> SessionCell<Value> {
        let key = key.base as! D.Key  // made from a `D.Key` by `swapIn`
        return storedCell(key) ?? lookUp(key, ThreadContext.current, storage)
    }

    @usableFromInline
    func releaseAll() {
        var values: [Value?] = []
        for shard in shards {
            let cells = shard.withLock { shard in
                defer { shard.cells.removeAll() }
                return Array(shard.cells.values)
            }
            values += cells.map { $0.take() }
        }
        withExtendedLifetime(values) {}
    }
}
