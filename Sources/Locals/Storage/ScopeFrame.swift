public import Synchronization

/// One open scope of a `.task` ``Local``: the value its owner reads and writes, published to the
/// child tasks created inside it through the scope chain (see `ScopeLink`).
///
/// A frame lives as long as any task can see it: the scope's own duration, plus every child that
/// inherited it, including an escaping `Task {}` (task-local bindings are retained that way),
/// plus every `.shared` or `.overlay` child's cell that reads through it.
///
/// `@unchecked Sendable`: `value`, `version` and `kept` are only touched with the lock held, except
/// that the owner of a scope that is not `.shared` reads `value` without it (nobody but that owner
/// ever writes it), and that `recycle` empties a frame no other task refers to any more, ordered
/// after their accesses by a fence instead of the lock. The rest is set at creation.
@usableFromInline
final class ScopeFrame<Value: Sendable>: ScopeLink, @unchecked Sendable {
    /// The scope's value, in memory of its own that lives as long as the frame, so that a closed
    /// frame can be emptied and opened again for the owner's next scope (see `recycle`).
    @usableFromInline let storage: UnsafeMutablePointer<Value>
    /// Whether `storage` holds a value (false while the frame waits, recycled).
    @exclusivity(unchecked) @usableFromInline var isOpen = true
    /// Bumped by every write of `value` (all under the lock): tells `.overlay` children whether
    /// their merged view is still current.
    @exclusivity(unchecked) @usableFromInline var version: UInt = 0
    // The rest is set when the frame is made or reused, before any other task can see it.
    /// Where the scope was opened (the `withValue`, `withValues` or `withScope` call).
    @exclusivity(unchecked) @usableFromInline var origin: ScopeOrigin
    @exclusivity(unchecked) @usableFromInline var inheritance: Inheritance
    /// The task or thread that opened the scope.
    @exclusivity(unchecked) @usableFromInline var owner: OwnerKey
    /// Where the owner's accesses went before the scope opened, restored when it closes.
    @exclusivity(unchecked) @usableFromInline var savedRoute: Route
    @exclusivity(unchecked) @usableFromInline var savedScope: ScopeFrame<Value>?
    /// A frame no task-local publishes: an `.overlay` child's own value after `Cell.freeze`. Set
    /// once, before the frame is used.
    @exclusivity(unchecked) @usableFromInline var isPrivate = false
    /// A frame a snapshot made of a context's own value, in front of the chain it captured.
    @exclusivity(unchecked) @usableFromInline var isCopiedValue = false
    /// A synchronous run's view of a Local, opened on the runner's cell and never published: what
    /// the runner writes there is a value of its own, which a snapshot taken inside the run copies.
    @exclusivity(unchecked) @usableFromInline var isRunView = false
    /// Set when the scope closed while others held the frame (`closeShared`), after the owner's
    /// last write: from then on nobody writes a `.copy` scope's value (see `peekRoute`). Atomic,
    /// so that a reader on another thread that sees it set sees that last write too, with no lock.
    @usableFromInline let isClosed = Atomic<Bool>(false)
    /// Children with no pin (see `TaskRuntime`) whose cells this frame bounds, made on the first:
    /// nil for almost every frame, so that opening and closing a scope has nothing more to do.
    @exclusivity(unchecked) @usableFromInline var kept: KeptCells<Value>?

    @inlinable
    init(
        value: consuming Value, localID: UInt64, inheritance: Inheritance, owner: OwnerKey, savedRoute: Route,
        savedScope: ScopeFrame<Value>?,
        origin: ScopeOrigin
    ) {
        storage = Platform.allocate(Value.self)
        storage.initialize(to: value)
        self.origin = origin
        self.inheritance = inheritance
        self.owner = owner
        self.savedRoute = savedRoute
        self.savedScope = savedScope
        super.init(localID: localID)
    }

    /// The scope's value (the frame is open).
    @inlinable
    var value: Value {
        unsafeAddress { UnsafePointer(storage) }
        unsafeMutableAddress { storage }
    }

    /// Empties a closed frame that only the caller refers to any more, so that its owner's next
    /// scope can use it instead of allocating: the value is released now, as when a frame goes,
    /// and last: its deinit is user code, which may reset the very key, and so free the cell that
    /// keeps this frame as its spare, and this frame with it. Returns false (and changes nothing,
    /// runs no user code) for a frame that cannot wait like that: a frozen child's, or one that
    /// bounds children's cells.
    ///
    /// The caller holds the only reference (`isKnownUniquelyReferenced`): every task that could
    /// reach the lock held one, so none can take it any more. What must be ordered is everything
    /// the other holders did with the frame (reads of the value, `keep` from a child) before what
    /// follows. Each of them dropped its reference with a releasing decrement, and the uniqueness
    /// check read the count that decrement left; the runtime reads it with no ordering of its own
    /// on some processors, so an acquiring fence here makes that read synchronize with the
    /// decrements: no lock's read-modify-write, and free where loads are ordered anyway (x86).
    /// Should the lock word say held all the same, the lock is taken as before.
    @inlinable
    func recycle() -> Bool {
        atomicMemoryFence(ordering: .acquiring)
        let held = isHeld
        if held {
            lock()
        }
        guard !isPrivate, kept == nil else {
            if held {
                unlock()
            }
            return false
        }
        isOpen = false
        isRunView = false
        guard savedScope != nil || ownsParent else {
            // The common case, a scope nested in no other scope of this Local and kept by nobody:
            // nothing to release but the value (no release calls on nil references either).
            parentLink = nil
            let value = storage.move()
            if held {
                unlock()
            }
            withExtendedLifetime(value) {}  // last: nothing of this frame is touched after (see above)
            return true
        }
        let dropped = (storage.move(), savedScope.take(), unlink())
        if held {
            unlock()
        }
        // Last: nothing of this frame is touched after (see above).
        withExtendedLifetime(dropped) {}
        return true
    }

    /// Opens a recycled frame as a new scope of `cell`'s owner, which restores where the cell
    /// points now when it closes.
    @inlinable
    func reuse(value: consuming Value, inheritance: Inheritance, on cell: Cell<Value>, origin: ScopeOrigin) {
        storage.initialize(to: value)
        isOpen = true
        self.origin = origin
        self.inheritance = inheritance
        owner = cell.owner
        savedRoute = cell.route
        // A recycled frame restores no scope (`recycle` took it), and most scopes are nested in
        // no other of their Local: the cell's scope is read (a retain, the unowned reference made
        // strong) and stored (a release of the nil it replaces) only where there is one, which is
        // where the route is not the cell's own value (`Cell.checkRoute`). The route, not
        // `cell.scope != nil`: the optimizer made that test itself retain and release the scope.
        if cell.route != .own {
            saveScope(of: cell)
        }
    }

    /// Keeps the scope `cell` points to, for `reuse`. Out of line, so that its retain stays out
    /// of the common case.
    @usableFromInline
    @inline(never)
    func saveScope(of cell: Cell<Value>) {
        savedScope = cell.scope
    }

    /// The route of the owner's accesses while the scope is open.
    @inlinable
    var ownerRoute: Route { inheritance == .shared ? .sharedScope : .scope }

    @inlinable
    func loadValue() -> Value {
        lock()
        defer { unlock() }
        return value
    }

    /// The route by which a context created inside the scope (a synchronous snapshot run's
    /// runner, see `CellStorage.scopeToPeek`) that has no storage of its own for the Local yet may
    /// read the frame in place, where that reads what storage of its own would: a `.shared`
    /// scope's live value (through the lock), or a `.copy` scope's value once nobody can change it
    /// any more (a closed scope, a snapshot's copy), which a copy made at this first touch would
    /// equal at every later one. Nil otherwise: a `.copy` scope still open (its owner may write
    /// it after this read, and the context must keep what it read), a `.fresh` one (the initial
    /// value), an `.overlay` one (read through a layer of the context's own).
    @inlinable
    var peekRoute: Route? {
        switch inheritance {
        case .shared:
            return .sharedScope
        case .copy:
            return isCopiedValue || isClosed.load(ordering: .acquiring) ? .scope : nil
        case .fresh, .overlay:
            return nil
        }
    }

    /// Replaces the value and hands back the old one, to be released outside the lock.
    func exchangeValue(_ newValue: Value) -> Value {
        lock()
        var old = newValue
        swap(&old, &value)
        version &+= 1
        unlock()
        return old
    }

    /// Changes the value atomically, on a copy that replaces it at the end, so that whatever the
    /// change drops is released after the lock: a deinit may use this very Local.
    @inlinable
    func mutate<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock()
        var updated = value
        let result: R
        do {
            result = try body(&updated)
        } catch {
            unlock()
            throw error
        }
        swap(&value, &updated)
        version &+= 1
        unlock()
        withExtendedLifetime(updated) {}
        return result
    }

    /// Closes a frame that others still hold (children that inherited it, snapshots): they may
    /// walk on from it after the outer scope closes, so it holds its parent from now on (see
    /// `ScopeLink`); and it lets go of the frame it restored, which no one reads any more (a
    /// synchronous run's view, whose value would otherwise outlive the run). Released here, after
    /// the owner's cell points back there: its value's deinit may use this Local.
    @usableFromInline
    func closeShared() {
        isClosed.store(true, ordering: .releasing)
        keepParent()
        let restored = savedScope.take()
        withExtendedLifetime(restored) {}
    }

    /// Bounds the cell of `child` (a task with no pin) by this frame's life.
    func keep(_ child: OwnerKey, in storage: CellStorage<Value>) {
        withLock {
            if kept == nil {
                kept = KeptCells(storage)
            }
            kept!.owners.append(child)
        }
    }

    deinit {
        if isOpen {
            storage.deinitialize(count: 1)
        }
        Platform.deallocate(storage)
        if let kept {
            kept.storage.removeCells(keptBy: kept.owners)
        }
    }
}

/// The children a `ScopeFrame` bounds (they end before it does), and the storage their cells
/// are in: they leave it when the frame goes.
@usableFromInline
final class KeptCells<Value: Sendable> {
    let storage: CellStorage<Value>
    var owners: [OwnerKey] = []

    init(_ storage: CellStorage<Value>) {
        self.storage = storage
    }
}

/// Where a scope was opened: the file and line of its `withValue`, `withValues` or `withScope`
/// call, taken from `#fileID` and `#line` defaults (two words and a number, nothing computed).
@usableFromInline
struct ScopeOrigin: Sendable, CustomStringConvertible {
    @usableFromInline let file: StaticString
    @usableFromInline let line: UInt

    @inlinable
    init(file: StaticString, line: UInt) {
        self.file = file
        self.line = line
    }

    /// A frame no call opened (an `.overlay` child's frozen value, a snapshot's own copy).
    @usableFromInline static let unopened = ScopeOrigin(file: "", line: 0)

    @usableFromInline
    var description: String { line == 0 ? "no scope" : "\(file):\(line)" }
}
