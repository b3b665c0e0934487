// How a snapshot's `run` puts each captured part in place for the running task or thread and
// takes it away again (what each part means is in `Storage+Snapshots`).

extension CellStorage {
    // MARK: A synchronous run, one step at a time

    /// Puts `part` in place for the running task or thread, and what undoes it in `slot`. Takes
    /// over the caller's reference to the storage (`me`), which `PartInPlace.close(at:)` releases.
    @inlinable
    func open(_ part: PartData<Value>, at slot: UnsafeMutableRawPointer, _ me: Unmanaged<CellStorage<Value>>) {
        let kept = Unmanaged<AnyObject>.fromOpaque(me.toOpaque())
        var inPlace: PartInPlace<Value>
        switch part.tag {
        case .value, .scope, .overlay:
            let (entered, published) = enter(part)
            switch entered {
            case .scope(let cell, let epoch):
                inPlace = PartInPlace(kept, .scope)
                inPlace.cell = cell
                inPlace.epoch = epoch
            case .redirect(let redirect):
                inPlace = PartInPlace(kept, .redirect)
                inPlace.other = UndoBox(redirect)
            }
            inPlace.frame = consume published
        case .thread:
            inPlace = PartInPlace(kept, .thread)
            inPlace.other = UndoBox(swapIn { $0 = unsafeDowncast(part, to: ValuePartData<Value>.self).value })
        case .session:
            preconditionFailure("swift-locals: a session part of a .task or .thread Local")
        }
        PartInPlace.store(inPlace, at: slot)
    }

    // MARK: Entering a `.task` part

    /// Where a `.task` part put the running context's accesses, and what to put back. (A scope's
    /// frame is not in here but handed back beside it, so that the one reference to it can be
    /// passed on to `closeScope`, which recycles the frame only if nothing else refers to it.)
    @usableFromInline
    enum Entered {
        case scope(cell: Unmanaged<Cell<Value>>, epoch: UInt)
        case redirect(Redirect)
    }

    @usableFromInline
    struct Redirect {
        /// Held: `undoSlowly` tells this cell from one made after it was removed by its identity.
        @usableFromInline let cell: Cell<Value>
        @usableFromInline let epoch: UInt
        @usableFromInline let owner: OwnerKey
        @usableFromInline let route: Route
        @usableFromInline let frame: ScopeFrame<Value>
        @usableFromInline let savedRoute: Route
        @usableFromInline unowned(unsafe) let savedScope: ScopeFrame<Value>?
        @usableFromInline let savedOverlay: OverlayState<Value>?
        /// Whether the cell was listed (see `Cell.isListed`): a write through the redirect (an
        /// `.overlay` child's layer) lists it only while the run lasts.
        @usableFromInline let wasListed: Bool

        @inlinable
        init(
            cell: Cell<Value>, epoch: UInt, owner: OwnerKey, route: Route, frame: ScopeFrame<Value>,
            savedRoute: Route, savedScope: ScopeFrame<Value>?, savedOverlay: OverlayState<Value>?
        ) {
            self.wasListed = cell.isListed
            self.cell = cell
            self.epoch = epoch
            self.owner = owner
            self.route = route
            self.frame = frame
            self.savedRoute = savedRoute
            self.savedScope = savedScope
            self.savedOverlay = savedOverlay
        }
    }

    /// Puts a `.task` part in place for the running context; returns what to undo and the scope to
    /// publish to the children created meanwhile.
    @inlinable
    func enter(_ part: PartData<Value>) -> (Entered, ScopeFrame<Value>) {
        switch part.tag {
        case .value:
            let opened = openScope(facts.inheritance, .unopened) { $0 = unsafeDowncast(part, to: ValuePartData<Value>.self).value }
            return (.scope(cell: opened.cell, epoch: opened.epoch), opened.frame)
        case .scope:
            return enter(view: part.frame.unsafelyUnwrapped, on: holdCell(), orGiveUp: false).unsafelyUnwrapped
        case .overlay:
            let frame = part.frame.unsafelyUnwrapped
            return (.redirect(redirect(.overlay, frame, OverlayState(part.layer.unsafelyUnwrapped.copy()))), frame)
        case .thread, .session:
            preconditionFailure("swift-locals: not a .task part")
        }
    }

    /// Puts the running context's accesses in `frame` on its cell `held`, as a child created inside
    /// the scope sees it, by the frame's policy: a scope of the context's own from a copy of the
    /// frame's value (`.copy`) or from the initial value (`.fresh`), or a redirect into the frame
    /// (`.shared`, `.overlay`), as `inherited(from:by:)` decides: for an `async` run's parts and a
    /// synchronous run's views.
    ///
    /// Where a cell was removed while the value was made (the initializer is user code) and
    /// `orGiveUp`, puts nothing in place and returns nil; else goes on the cell the context has now.
    @inlinable
    func enter(
        view frame: ScopeFrame<Value>, on held: HeldCell<Value>, orGiveUp: Bool
    ) -> (Entered, ScopeFrame<Value>)? {
        let owner = held.cell._withUnsafeGuaranteedRef { $0.owner }
        switch inherited(from: frame, by: owner) {
        case .value(let value, _):
            let opened = openScope(on: held, frame.inheritance, frame.origin, orGiveUp: orGiveUp) { _ in value }
            return opened.map { (.scope(cell: $0.cell, epoch: $0.epoch), $0.frame) }
        case .route(let route, let overlay):
            if isStillHeld(held) {
                return (.redirect(redirect(on: held, route, frame, overlay)), frame)
            }
            return orGiveUp ? nil : (.redirect(redirect(route, frame, overlay)), frame)
        }
    }

    // MARK: The scope a context sees

    /// The innermost scope of this Local that `owner` (the running task or thread) sees: opened
    /// by it, or inherited. Inside a snapshot run of `owner`'s own, a Local the captured chain has
    /// a scope of is seen through it, any other as outside the run (see `RunBoundary`).
    func visibleScope(for owner: OwnerKey) -> ScopeFrame<Value>? {
        scope(for: owner, newCell: false).frame
    }

    /// What a cell `owner` makes starts from: the same, except that inside a synchronous run of
    /// its own the cell starts as outside the run (the run then puts its view in place on it).
    /// `inOwnRun` says that the scope was found through such a run, in the captured chain: it is
    /// not an ancestor of `owner`, and need not outlive it.
    func scopeForNewCell(for owner: OwnerKey) -> (frame: ScopeFrame<Value>?, inOwnRun: Bool) {
        scope(for: owner, newCell: true)
    }

    private func scope(for owner: OwnerKey, newCell: Bool) -> (frame: ScopeFrame<Value>?, inOwnRun: Bool) {
        var link = ScopeChain.head
        var inOwnRun = false
        while let current = link {
            if current.localID == localID {
                return (unsafeDowncast(current, to: ScopeFrame<Value>.self), inOwnRun)
            }
            guard current.localID == 0, let run = current as? RunBoundary else {
                link = current.parent
                continue
            }
            if run.isRun(of: owner) {
                if (newCell && run.isLazy) || run.isEndingRun || ScopeChain.find(localID, from: run.parent) == nil {
                    link = run.outside
                    run.noteWalked()
                    continue
                }
                inOwnRun = true
            }
            link = run.parent
            run.noteWalked()
        }
        return (nil, inOwnRun)
    }

    /// Puts `run`'s view of this Local in place on `cell` (the running context's, who runs it) at
    /// the context's first access inside the run, as a child created at the capture point sees
    /// the Local: through the captured chain's scope if it has one, else from the initial value
    /// (the cell's, if it was just made with it: `madeInitial`), as a scope of the running
    /// context's own that no child inherits. Taken away when the run ends.
    ///
    /// `cell` was found with the removal epoch `epoch` read before (see `HeldCell`), so the view
    /// goes on it with no second lookup.
    ///
    /// Nothing here is retained that someone holds already (the run, its chain, this storage's
    /// operations): a view is what a callback's first read of each Local pays.
    ///
    /// A Local the run put in place as a part when it started has nothing to do here, unless the
    /// running context's cell was removed since and `cell` was `made` inside the run: the part
    /// then goes in place again on it, as a view.
    func enterRunView(_ cell: Cell<Value>, _ run: ActiveRun, made: Bool, madeInitial: Bool, epoch: UInt) {
        if run.isEnding { return }  // a deinit while the run takes its views away (see `ActiveRun.end`)
        if cell.isPlaceholder, let scope = cell.scope, Self.isOpened(scope, inside: run) {
            // Made again inside a scope the context opened inside the run (its cell was removed
            // there), at this touch or an earlier one whose cache slot has gone since: that scope,
            // not the run's view under it, is what the context sees until it closes, when the
            // placeholder goes and the next touch gets the view again.
            return
        }
        var part: Unmanaged<AnyObject>?
        if let viewed = run.viewed(of: localID, on: cell) {
            if viewed.onCell { return }
            if let data = viewed.part {
                if !viewed.onOther, !made { return }  // the cell the part went on at the start
                part = data
            } else if !viewed.onOther {
                return
            }
        }
        run.setViewed(localID, on: cell)
        guard let ops = ops.map(Unmanaged.passUnretained) else { return }
        let view = part == nil ? ScopeChain.find(localID, from: run.parentLink) : nil
        let record = run.nextUndo()
        let placed = record._withUnsafeGuaranteedRef { undo in
            undo.operations = ops
            return ops._withUnsafeGuaranteedRef { ops in
                // Through the snapshot operations, which are specialized for `Value`: out here the
                // value type is not concrete, and every step would look up generic type metadata.
                ops.enterView(self, view, part?.takeUnretainedValue(), cell, madeInitial, epoch, undo)
            }
        }
        if !placed {
            // A cell was removed meanwhile: the caller finds the running context's cell again, and
            // the view goes on that one. The record stays, empty, in its place: the initializer
            // may have put other Locals' views in place after it. The cell is no longer marked as
            // viewed: the removal may have been another context's, and the caller then finds this
            // same cell, which still needs its view.
            record._withUnsafeGuaranteedRef { $0.operations = nil }
            run.forgetViewed(localID)
        }
    }

    /// Whether `frame` is a scope opened inside `run`: in front of the run's boundary in the
    /// running context's chain.
    static func isOpened(_ frame: ScopeFrame<Value>, inside run: ActiveRun) -> Bool {
        var link = ScopeChain.head
        while let current = link, current !== run {
            if current === frame {
                return true
            }
            link = current.parent
        }
        return false
    }

    /// What `enterRunView` does once the value type is concrete: a scope of the running
    /// context's own on `cell`, from a copy of the captured `.copy` scope's value, or the initial
    /// value (of a `.fresh` scope, or where the chain has none); or a redirect into a captured
    /// `.shared` or `.overlay` scope.
    ///
    /// Returns false, and puts nothing in place, where a cell was removed meanwhile (a discard from
    /// elsewhere, or the initializer resetting the key): the caller then finds the running
    /// context's cell again and puts the view on that one. (Opening it here on the new cell would
    /// find the cell again through the run, and put a second view under this one.)
    @inlinable
    func enterRunView(
        _ view: Unmanaged<ScopeLink>?, part: AnyObject?, on cell: Cell<Value>, madeInitial: Bool, epoch: UInt,
        _ undo: RunUndo
    ) -> Bool {
        if let part {
            // A part again, on a cell made inside the run: no user code runs here.
            return keep(enter(unsafeDowncast(part, to: PartData<Value>.self)), in: undo)
        }
        let held = HeldCell(cell: Unmanaged.passUnretained(cell), epoch: epoch)
        guard let view else {
            // No scope in the chain: a child created at the capture point starts from the initial
            // value (the cell's, if it was just made with it; else one made for the view, or made
            // for it before a removal elsewhere made the view give up, and kept for this try).
            let initial = madeInitial ? cell.own.value : viewInitialValue(for: cell.owner)
            let opened = openScope(on: held, .copy, .unopened, orGiveUp: true) { _ in initial }
            if opened == nil, !madeInitial {
                keepViewInitial(initial, for: cell.owner)
            }
            return keep(opened.map { (.scope(cell: $0.cell, epoch: $0.epoch), $0.frame) }, in: undo)
        }
        // The captured scope, unretained: the run's snapshot holds its chain.
        return view._withUnsafeGuaranteedRef { link in
            keep(enter(view: unsafeDowncast(link, to: ScopeFrame<Value>.self), on: held, orGiveUp: true), in: undo)
        }
    }

    /// The initial value for a run's view on `owner`'s cell: the one kept by a view that gave up
    /// (see `keepViewInitial`), else the initializer's.
    @usableFromInline
    func viewInitialValue(for owner: OwnerKey) -> Value {
        let context = ThreadContext.current
        defer { context.viewInitial = nil }
        if let kept = context.viewInitial, kept.storage == ObjectIdentifier(self), kept.owner == owner,
            let value = kept.value as? Value
        {
            return value
        }
        return facts.makeInitialValue(for: owner)
    }

    /// Keeps `value`, made for a run's view on `owner`'s cell that gave up (a removal elsewhere
    /// came in while the initializer ran), for the view put in place again: so that the
    /// initializer runs once for it, as the running context's first touch.
    @usableFromInline
    func keepViewInitial(_ value: Value, for owner: OwnerKey) {
        ThreadContext.current.viewInitial = (ObjectIdentifier(self), owner, value)
    }

    /// Keeps what a view put in place in `undo`, or returns false where it put nothing. A scope's
    /// frame (the one reference to it) moves there, so that it goes back uniquely referenced and
    /// is recycled when the view is taken away.
    @inlinable
    @inline(__always)
    func keep(_ entered: (Entered, ScopeFrame<Value>)?, in undo: RunUndo) -> Bool {
        guard let (entered, frame) = entered else { return false }
        undo.storage = self
        switch entered {
        case .scope(let cell, let epoch):
            frame.isRunView = true
            undo.cell = cell.toOpaque()
            undo.epoch = epoch
            undo.wasListed = cell._withUnsafeGuaranteedRef { $0.isListed }
        case .redirect(let redirect):
            undo.redirect = UndoBox(redirect)  // which puts the listing back itself
        }
        undo.frame = frame
        return true
    }

    /// Points the running context's accesses at `frame` by `route`, as a child of that scope.
    @inlinable
    func redirect(_ route: Route, _ frame: ScopeFrame<Value>, _ overlay: OverlayState<Value>?) -> Redirect {
        redirect(on: holdCell(), route, frame, overlay)
    }

    /// `redirect` of the running context's cell `held`.
    @inlinable
    func redirect(
        on held: HeldCell<Value>, _ route: Route, _ frame: ScopeFrame<Value>, _ overlay: OverlayState<Value>?
    ) -> Redirect {
        held.cell._withUnsafeGuaranteedRef { cell in
            let redirect = Redirect(
                cell: cell, epoch: held.epoch, owner: cell.owner, route: route, frame: frame,
                savedRoute: cell.route, savedScope: cell.scope, savedOverlay: cell.overlay
            )
            cell.point(to: route, frame, overlay: overlay)
            return redirect
        }
    }

    /// Puts back what `redirect` changed. If the running context's cell was dropped meanwhile
    /// (by `discard(key:)` or `reset()`), see `undoSlowly`. `lazyView`: the redirect is a
    /// synchronous run's view, put in place at the first access, rather than a part put in place
    /// when the run started.
    @inlinable
    func undo(_ redirect: Redirect, lazyView: Bool) {
        let cell = Unmanaged.passUnretained(redirect.cell)
        if isStillHeld(HeldCell(cell: cell, epoch: redirect.epoch)) {
            let dropped = cell._withUnsafeGuaranteedRef { cell -> OverlayState<Value>? in
                let dropped = cell.overlay
                cell.point(to: redirect.savedRoute, redirect.savedScope, overlay: redirect.savedOverlay)
                cell.isListed = redirect.wasListed
                return dropped
            }
            withExtendedLifetime(dropped) {}  // released once the cell is whole again
        } else {
            undoSlowly(redirect, lazyView: lazyView)
        }
    }

    /// `undo` once some cell of this Local was removed meanwhile. The redirected cell, if the
    /// running context still has it, goes back as `undo` puts it, unless it cannot take the old
    /// route (as when a scope closes, see `closeScopeSlowly`): then it goes. A cell made after the
    /// redirected one was removed, inside the run, has none of the redirected cell's state to
    /// take back (its overlay layer was the discarded one's): a synchronous run's view of it
    /// was taken away already, and it stays; one that a part's run made from the captured chain
    /// goes, whatever the run did with it (a whole-value write freezes an `.overlay` child's), so
    /// that the next touch makes it as outside the run.
    @usableFromInline
    func undoSlowly(_ redirect: Redirect, lazyView: Bool) {
        guard let cell = existingCell() else { return }
        guard cell === redirect.cell else {
            if !lazyView {
                withExtendedLifetime(removeCell(of: redirect.owner, byOwner: true)) {}
            }
            return
        }
        let fits = redirect.savedRoute != .own || cell is OwnedCell<Value>
        guard fits, !cell.isPlaceholder else {
            withExtendedLifetime(removeCell(of: redirect.owner, byOwner: true)) {}
            return
        }
        let dropped = cell.overlay
        cell.point(to: redirect.savedRoute, redirect.savedScope, overlay: redirect.savedOverlay)
        cell.isListed = redirect.wasListed
        withExtendedLifetime(dropped) {}
    }

    /// A scope view's listing put back once some cell was removed: on the cell still in the view
    /// (found by the view's frame, which no other cell points into).
    @usableFromInline
    func relistSlowly(_ frame: ScopeFrame<Value>, _ wasListed: Bool) {
        guard let cell = tables.withLock({ Self.cell(of: frame.owner, in: $0) }), cell.scope === frame,
            !cell.isPlaceholder
        else { return }
        cell.isListed = wasListed
    }
}
