public import Synchronization

// Scopes of a `.task` Local: opening one points the owner's cell into a new frame, closing it
// points the cell back. Between the two the cell is held without a retain (see `HeldCell`).

/// The running context's cell, found without a retain, and the removal epoch that vouches for it:
/// the one way a cell is held across code that may let a removal in (a scope's operation, a
/// snapshot's `run`) and used again afterwards with no lookup.
///
/// Nobody but the owner frees a cell while its owner runs; someone else who removes it (`reset`,
/// `discard(key:)` from another thread) bumps the storage's epoch and parks the cell, and the
/// owner's next touch frees it. So the cell may be used again only while the epoch is the one
/// read **before** the cell was found (`CellStorage.holdCell()`): a removal between finding the cell
/// and reading the epoch would otherwise go unseen, and the owner would write into the cell its
/// own next touch freed. After a change, the owner finds its cell again under the lock.
@usableFromInline
struct HeldCell<Value: Sendable> {
    @usableFromInline let cell: Unmanaged<Cell<Value>>
    @usableFromInline let epoch: UInt

    @inlinable
    init(cell: Unmanaged<Cell<Value>>, epoch: UInt) {
        self.cell = cell
        self.epoch = epoch
    }
}

extension CellStorage {
    /// The running context's cell (made on first touch), held without a retain (see `HeldCell`).
    @inlinable
    @inline(__always)
    func holdCell() -> HeldCell<Value> {
        // First the epoch, then the cell: see `HeldCell`.
        let epoch = self.epoch.load(ordering: .relaxed)
        if let cell = cachedCell(epoch: epoch) {
            return HeldCell(cell: cell, epoch: epoch)
        }
        return holdCellSlowly()
    }

    /// `holdCell` where the cache has no cell: resolved, and held only if nothing was removed
    /// while it was found. A first touch releases the ended tasks' cells it sweeps (their values'
    /// deinits are user code, which may reset the running task's key and so drop the cell just
    /// made); `resolveCell` keeps the cell alive until it returns, not after.
    @usableFromInline
    @inline(never)
    func holdCellSlowly() -> HeldCell<Value> {
        while true {
            let epoch = self.epoch.load(ordering: .relaxed)
            let cell = resolveCell()
            if isStillHeld(HeldCell(cell: Unmanaged.passUnretained(cell), epoch: epoch)) {
                return HeldCell(cell: Unmanaged.passUnretained(cell), epoch: epoch)
            }
        }
    }

    /// Whether `held` may still be used: nothing was removed since it was found.
    @inlinable
    @inline(__always)
    func isStillHeld(_ held: HeldCell<Value>) -> Bool {
        epoch.load(ordering: .relaxed) == held.epoch
    }

    /// Runs `operation` inside a `.task` scope of the running context (see
    /// ``Local/withValues(_:inheritance:file:line:operation:)``): opens it, publishes its frame to
    /// the children `operation` creates, and closes it.
    @inlinable
    @inline(__always)
    func withScope<R>(
        _ inheritance: Inheritance, _ origin: ScopeOrigin, _ change: (inout Value) -> Void, _ operation: () -> R
    ) -> R {
        let (cell, frame, epoch) = openScope(inheritance, origin, change)
        let result = withScopeKey(frame, operation)
        closeScope(cell, consume frame, epoch)
        return result
    }

    /// Opens a `.task` scope for the running context: a frame starting from its current value
    /// changed by `change`, which its cell's route points into until `closeScope`.
    ///
    /// `change` is user code, and so is the deinit of a merged view the load replaces (an
    /// `.overlay` child's): either may free the cell (`reset()`, `discard(key:)` of the running
    /// task's own key, or its next touch after a discard from elsewhere). So after them the cell
    /// is used only if nothing was removed meanwhile; else the scope opens on the storage the
    /// running task has now (`openScopeAgain`). From there to the route's change, no user code runs.
    @inlinable
    @inline(__always)
    func openScope(
        _ inheritance: Inheritance, _ origin: ScopeOrigin, _ change: (inout Value) -> Void
    ) -> (cell: Unmanaged<Cell<Value>>, frame: ScopeFrame<Value>, epoch: UInt) {
        openScope(on: holdCell(), inheritance, origin) { cell in
            var value = Access.load(cell)
            change(&value)
            return value
        }
    }

    /// Opens a `.task` scope on the running context's cell `held` (found by the caller), with the
    /// value `makeValue` gives: as `openScope`, where `makeValue` may be user code.
    @inlinable
    @inline(__always)
    func openScope(
        on held: HeldCell<Value>, _ inheritance: Inheritance, _ origin: ScopeOrigin,
        _ makeValue: (Cell<Value>) -> Value
    ) -> (cell: Unmanaged<Cell<Value>>, frame: ScopeFrame<Value>, epoch: UInt) {
        openScope(on: held, inheritance, origin, orGiveUp: false, makeValue).unsafelyUnwrapped
    }

    /// `openScope(on:_:_:_:)`; where a cell was removed while `makeValue` ran and `orGiveUp`,
    /// opens nothing and returns nil (a run's view, which its caller puts in place again on the
    /// cell the running context has now) instead of opening on that cell.
    @inlinable
    @inline(__always)
    func openScope(
        on held: HeldCell<Value>, _ inheritance: Inheritance, _ origin: ScopeOrigin, orGiveUp: Bool,
        _ makeValue: (Cell<Value>) -> Value
    ) -> (cell: Unmanaged<Cell<Value>>, frame: ScopeFrame<Value>, epoch: UInt)? {
        held.cell._withUnsafeGuaranteedRef { cell in
            let value = makeValue(cell)
            guard isStillHeld(held) else {
                if orGiveUp {
                    return nil
                }
                return openScopeAgain(consume value, inheritance, origin)
            }
            guard let spare = cell.takeSpare() else {
                let made = Self.makeFrame(cell, consume value, localID, inheritance, origin)
                return (held.cell, Self.enter(cell, made), held.epoch)
            }
            spare.reuse(value: consume value, inheritance: inheritance, on: cell, origin: origin)
            return (held.cell, Self.enter(cell, spare), held.epoch)
        }
    }

    /// `openScope` once user code removed a cell: `value` goes into a scope opened on the running
    /// context's cell as it is now (made again if it was the one removed). Held strongly here, and
    /// no user code runs once it is found.
    @usableFromInline
    @inline(never)
    func openScopeAgain(
        _ value: consuming Value, _ inheritance: Inheritance, _ origin: ScopeOrigin
    ) -> (cell: Unmanaged<Cell<Value>>, frame: ScopeFrame<Value>, epoch: UInt) {
        let held = holdCell()
        let cell = held.cell.takeUnretainedValue()
        guard let spare = cell.takeSpare() else {
            return (held.cell, Self.enter(cell, Self.makeFrame(cell, value, localID, inheritance, origin)), held.epoch)
        }
        spare.reuse(value: value, inheritance: inheritance, on: cell, origin: origin)
        return (held.cell, Self.enter(cell, spare), held.epoch)
    }

    /// A new frame for a scope `cell`'s owner opens, when the cell has no spare: the first scope,
    /// or one nested in another. Out of line: `openScope` is inlined into every scope.
    @usableFromInline
    @inline(never)
    static func makeFrame(
        _ cell: Cell<Value>, _ value: consuming Value, _ localID: UInt64, _ inheritance: Inheritance,
        _ origin: ScopeOrigin
    ) -> ScopeFrame<Value> {
        ScopeFrame(
            value: value, localID: localID, inheritance: inheritance, owner: cell.owner,
            savedRoute: cell.route, savedScope: cell.scope, origin: origin
        )
    }

    /// Points the owner's accesses into `frame`, and hands the frame on. (Called on each path of
    /// `openScope` rather than once after both: where the two paths' frames merged first, the
    /// optimizer left a retain and a release of the frame around these stores.)
    @inlinable
    @inline(__always)
    static func enter(_ cell: Cell<Value>, _ frame: consuming ScopeFrame<Value>) -> ScopeFrame<Value> {
        cell.point(to: frame.ownerRoute, frame)
        return frame
    }

    /// Publishes `frame` to the child tasks `operation` creates: links it in front of the running
    /// context's scope chain and binds the chain's task-local to it. The task-local and the frame
    /// are borrowed: the binding's own reference is the only retain (the runtime releases it when
    /// the binding goes), where the plain call would also retain and release the task-local and
    /// the frame around it.
    @inlinable
    @inline(__always)
    func withScopeKey<R>(_ frame: ScopeFrame<Value>, _ operation: () -> R) -> R {
        Unmanaged.passUnretained(chainKey)._withUnsafeGuaranteedRef { key in
            if bindsInPlace {
                return Unmanaged.passUnretained(frame)._withUnsafeGuaranteedRef { frame in
                    BindingInPlace.withBinding(frame, owner: frame.owner.address, key: key, operation)
                }
            }
            frame.link(to: ScopeChain.unretainedHead(of: key))
            return Unmanaged.passUnretained(frame)._withUnsafeGuaranteedRef { frame in
                key.withValue(frame, operation: operation)
            }
        }
    }

    /// Closes a scope `openScope` opened: the owner's accesses go back where they went before.
    /// Takes the frame over: if nobody else refers to it any more (no child, no snapshot kept it),
    /// it is emptied and kept in the owner's cell for its next scope, which then allocates nothing.
    @inlinable
    func closeScope(_ cell: Unmanaged<Cell<Value>>, _ frame: consuming ScopeFrame<Value>, _ epoch: UInt) {
        guard isStillHeld(HeldCell(cell: cell, epoch: epoch)) else {
            closeScopeSlowly(frame)
            return
        }
        // Optional, so that the frame moves into the cell (a swap, below) with no retain and release.
        var frame: ScopeFrame<Value>? = consume frame
        cell._withUnsafeGuaranteedRef { cell in
            cell.point(to: frame.unsafelyUnwrapped.savedRoute, frame.unsafelyUnwrapped.savedScope)
            guard isKnownUniquelyReferenced(&frame) else {
                frame.unsafelyUnwrapped.closeShared()  // its holders may walk on after the outer scope closes
                return
            }
            // Into the cell first, and emptied there: `recycle` releases the value last, and its
            // deinit may reset the key, which frees the cell (and the frame with it). Nothing
            // touches either afterwards.
            let recycling = Unmanaged.passUnretained(frame.unsafelyUnwrapped)
            cell.swapSpare(&frame)
            if !recycling._withUnsafeGuaranteedRef({ $0.recycle() }) {
                cell.swapSpare(&frame)  // a frame that cannot wait: out again (no user code ran)
            }
            // What the swap handed back (the spare it replaced, almost always none), released
            // only where there is one: no release call on nil.
            if let replaced = frame.take() {
                withExtendedLifetime(replaced) {}
            }
        }
    }

    /// Closes a scope after some cell was removed meanwhile: the owner's cell may be a placeholder,
    /// made inside its own scope with no value of its own. A placeholder cannot take the owner
    /// back where it was before the scope (its own value, its `.overlay` layer), so it goes: the
    /// owner's next touch makes a new cell from the scope it sees then, running the initializer as
    /// after any `discard(key:)`.
    @usableFromInline
    func closeScopeSlowly(_ frame: ScopeFrame<Value>) {
        defer { frame.closeShared() }  // not recycled: whoever else holds it may walk on
        guard let cell = tables.withLock({ Self.cell(of: frame.owner, in: $0) }), cell.scope === frame else { return }
        if cell.isPlaceholder {
            let removed = removeCell(of: frame.owner, byOwner: true)
            withExtendedLifetime(removed) {}
            return
        }
        cell.point(to: frame.savedRoute, frame.savedScope)
    }
}
