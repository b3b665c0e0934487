/// Whose value a cell holds: a task (its identity), or a thread (address 0 and the thread's serial
/// number). Never shared by two tasks or threads of the process.
@usableFromInline
typealias OwnerKey = TaskIdentity

extension OwnerKey {
    init(_ thread: ThreadID) {
        self.init(address: 0, id: thread.serial)
    }

    var isThread: Bool { address == 0 }

    /// The key of a custom discriminator's context that has none (`currentKey` is nil): nothing
    /// is stored under it, but an initializer can still recurse.
    @usableFromInline static let noKey = OwnerKey(address: 0, id: 0)
}

/// Where a task's (or thread's) accesses to its cell go.
@usableFromInline
enum Route: UInt8, Sendable {
    /// The cell's own value: only its owner touches it, with no lock.
    case own
    /// The value of a scope the owner opened (any policy but `.shared`): only the owner writes it,
    /// so the owner reads it with no lock and writes it under the scope's lock (children may be
    /// copying or reading through it).
    case scope
    /// The value of a `.shared` scope, the owner's or inherited: every access locks.
    case sharedScope
    /// An `.overlay` child: its own writes (the cell's layer) on top of the scope's live value.
    case overlay
}

/// Where one `.task` or `.thread` Local's accesses go for one task or thread (its owner).
///
/// A cell of this class itself has no value of its own: it belongs to a child that reads through
/// a `.shared` or `.overlay` scope, or to an owner whose cell was dropped inside its own scope.
/// Cells with a value are `OwnedCell`s (the `.own` route only ever points into one). The
/// `.overlay` route keeps its writes in `overlay`.
///
/// `@unchecked Sendable`: only the owner reads or writes the route, the scope and what the
/// subclasses add; a task runs on one thread at a time and the runtime orders its steps across
/// threads. Everyone else only adds the cell to or removes it from a locked table; nobody else
/// writes into it.
@usableFromInline
class Cell<Value: Sendable>: @unchecked Sendable, AddressKeyed {
    @exclusivity(unchecked) @usableFromInline final var route: Route
    /// Made for an owner whose cell was dropped inside its own scope: it only ever points into
    /// the owner's scopes, and goes when the scope it was made in closes. (Beside `route`, so
    /// that the two share a word.)
    @exclusivity(unchecked) final var isPlaceholder = false
    /// Whether `extras` holds the overlay state (else the spare frame, or nothing). In the same
    /// word as `route`.
    @exclusivity(unchecked) @usableFromInline final var extrasIsOverlay = false
    /// Whether the owner's list of Locals with values of its own (which a snapshot copies) names
    /// this cell's Local: set on the cell's first write outside a scope, or when it is made as a
    /// copy of a scope's value. In the same word as `route`.
    @exclusivity(unchecked) @usableFromInline final var isListed = false
    /// Whether `extras` holds the part the last capture took of a `.thread` cell's value (see
    /// `threadPart()`; `.thread` cells have no scope frames). In the same word as `route`.
    @exclusivity(unchecked) @usableFromInline final var extrasIsThreadPart = false
    #if DEBUG
    /// Debug builds: made from the initial value in a child task whose parent wrote a value of
    /// its own outside any scope. The owner's first read warns (see `Diagnostics`); a write
    /// first clears it, as a child that sets its own value meant to.
    @exclusivity(unchecked) @usableFromInline final var missedParentValue = false
    #endif
    /// The scope `route` points into (nil for `.own`), not retained: while the owner runs, the
    /// scope is kept alive by the task-local binding that published it (or, for the owner's own
    /// scope, by the call that opened it), and nobody but the owner follows this pointer. So an
    /// ended task's cell, waiting to be swept, keeps no scope (and no scope's value) alive.
    @exclusivity(unchecked) @usableFromInline final unowned(unsafe) var scope: ScopeFrame<Value>?
    @usableFromInline final let owner: OwnerKey
    /// The spare frame or the overlay state (see `takeSpare`, `overlay` and `extrasIsOverlay`):
    /// one word, not two, since every task that touches a Local has a cell, and few cells need
    /// both (an overlay state keeps the cell's spare frame). A plain reference, not an enum with
    /// two class payloads: Swift would keep the case in the pointer's spare bits, where leak
    /// checkers (Address Sanitizer's) do not recognize the pointer.
    @exclusivity(unchecked) @usableFromInline final var extras: AnyObject?
    /// The pin of the owning heap task (or of an `async let` child's heap ancestor); answers
    /// whether the task has ended. Nil for threads, and where the runtime gives no pin.
    final let record: TaskRecord?

    init(owner: OwnerKey, record: TaskRecord?, route: Route, scope: ScopeFrame<Value>?) {
        self.owner = owner
        self.record = record
        self.route = route
        self.scope = scope
    }

    /// A cell of no owner that reads `scope` by `route`: what a synchronous snapshot run reads a
    /// captured scope through in place (see `CellStorage.cellForRead`). Never in the tables.
    @usableFromInline
    static func reading(_ scope: ScopeFrame<Value>, by route: Route) -> Cell<Value> {
        Cell(owner: .noKey, record: nil, route: route, scope: scope)
    }

    // MARK: Transitions
    //
    // Every change of a cell's route after it is made goes through `point(to:_:)`, or
    // `point(to:_:overlay:)` where the overlay state changes with it: opening and closing a scope,
    // a snapshot run's redirect and its undo, an `.overlay` child freezing or starting over. Debug
    // builds check after each one what its route needs (`checkRoute`); release builds are the
    // plain stores.

    /// Points the owner's accesses by `route` into `scope` (nil for `.own`).
    @inlinable
    @inline(__always)
    final func point(to route: Route, _ scope: ScopeFrame<Value>?) {
        self.route = route
        self.scope = scope
        #if DEBUG
        checkRoute()
        #endif
    }

    /// `point(to:_:)`, with the overlay state an `.overlay` route reads through (nil for none).
    @inlinable
    @inline(__always)
    final func point(to route: Route, _ scope: ScopeFrame<Value>?, overlay: OverlayState<Value>?) {
        self.route = route
        self.scope = scope
        self.overlay = overlay
        #if DEBUG
        checkRoute()
        #endif
    }

    #if DEBUG
    /// What each route needs: `.own` a value of the cell's own and no scope; `.scope` a scope;
    /// `.sharedScope` a `.shared` scope; `.overlay` a scope and an overlay state. Stops the
    /// program, naming what is missing, where a transition broke that.
    @usableFromInline
    final func checkRoute() {
        switch route {
        case .own:
            precondition(scope == nil, "swift-locals: a cell on its own value still points into a scope")
            precondition(!extrasIsThreadPart || owner.isThread, "swift-locals: a task's cell keeps a .thread part")
            precondition(self is OwnedCell<Value>, "swift-locals: a cell with no value of its own routed to its own value")
        case .scope:
            precondition(scope != nil, "swift-locals: a cell routed into a scope has no scope")
        case .sharedScope:
            precondition(scope?.inheritance == .shared, "swift-locals: a cell routed into a shared scope points elsewhere")
        case .overlay:
            precondition(scope != nil && extrasIsOverlay, "swift-locals: an .overlay route without its scope or state")
        }
    }
    #endif

    deinit {
        if let record {
            TaskRegistry.release(record)
        }
    }

    final var tableAddress: UInt { owner.address }

    /// Whether the owner is a task that has ended (never true for threads or unpinned tasks).
    final var ownerHasEnded: Bool {
        record.map(TaskRegistry.hasEnded) ?? false
    }

    /// Runs `body` on the scope the route points into, with no retain (see `scope`).
    @inlinable
    @inline(__always)
    final func withScope<R, E: Error>(_ body: (ScopeFrame<Value>) throws(E) -> R) throws(E) -> R {
        let frame = Unmanaged.passUnretained(scope.unsafelyUnwrapped)
        return try frame._withUnsafeGuaranteedRef { frame in Result { () throws(E) -> R in try body(frame) } }.get()
    }

    /// The overlay state (`extrasIsOverlay` is true).
    @inlinable
    final var overlayState: OverlayState<Value> {
        unsafeDowncast(extras.unsafelyUnwrapped, to: OverlayState<Value>.self)
    }

    /// Takes the spare frame out, if there is one: the owner's last closed scope frame, emptied,
    /// for its next scope (see `ScopeFrame.recycle`). A move, with no reference counting (the
    /// scope path runs this on every scope its owner opens).
    @inlinable
    final func takeSpare() -> ScopeFrame<Value>? {
        assert(!extrasIsThreadPart, "swift-locals: a scope frame asked of a .thread cell")
        if extrasIsOverlay {
            return overlayState.spare.take()
        }
        guard let taken = extras.take() else { return nil }
        return unsafeDowncast(taken, to: ScopeFrame<Value>.self)
    }

    /// Puts `frame` in as the spare frame, and hands back the one it replaced in `frame`: a move,
    /// with no reference counting.
    @inlinable
    final func swapSpare(_ frame: inout ScopeFrame<Value>?) {
        if extrasIsOverlay {
            swap(&overlayState.spare, &frame)
            return
        }
        var other: AnyObject? = frame.take()
        swap(&other, &extras)
        if let old = other.take() {
            frame = unsafeDowncast(old, to: ScopeFrame<Value>.self)
        }
    }

    /// The writes of an `.overlay` route on top of its scope (nil on every other route).
    /// Setting it moves the cell's spare frame (or its absence) along: the state it replaces
    /// keeps none, so that a state put back later (after a snapshot's `run`) never hands out a
    /// frame that was reused meanwhile.
    @inlinable
    final var overlay: OverlayState<Value>? {
        get {
            extrasIsOverlay ? overlayState : nil
        }
        set {
            let spare = extrasIsOverlay ? overlayState.spare.take() : takeSpare()
            if let newValue {
                newValue.spare = spare
                extras = newValue
                extrasIsOverlay = true
            } else {
                extras = spare
                extrasIsOverlay = false
            }
        }
    }

    /// The cell's own value: only for the `.own` route, which only an `OwnedCell` takes.
    @inlinable
    final var own: OwnedCell<Value> {
        unsafeDowncast(self, to: OwnedCell<Value>.self)
    }

}

extension Cell {
    /// An `.overlay` route's view: the scope's live value with the route's writes on top.
    @usableFromInline
    final func overlaid() -> Value {
        var merged = scope.unsafelyUnwrapped.loadValue()
        overlay.unsafelyUnwrapped.layer.apply(to: &merged)
        return merged
    }

    /// An `.overlay` child stops reading through: from now on it reads and writes `value` (what
    /// it sees now, changed) as its own, kept in a private frame that no other task sees, until
    /// `reset()` sends it back to the scope.
    @usableFromInline
    final func freeze(_ value: Value) {
        let overlay = self.overlay.unsafelyUnwrapped
        // Not linked to the scope it froze from: an ended child's cell keeps nothing of it alive.
        let kept = ScopeFrame(
            value: value, localID: 0, inheritance: .copy, owner: owner, savedRoute: .overlay, savedScope: nil, origin: .unopened
        )
        kept.isPrivate = true
        point(to: .scope, kept)
        overlay.frozen = kept
        // Released once the cell is whole again: a deinit may use this very Local.
        let dropped = overlay.layer.clear()
        overlay.layerChanged()
        withExtendedLifetime(dropped) {}
    }
}

/// A cell with a value of its own: a task or thread outside any scope, or a child of a `.copy` or
/// `.fresh` scope. Its route is `.own` except while the owner has a scope of its own open.
@usableFromInline
final class OwnedCell<Value: Sendable>: Cell<Value>, @unchecked Sendable {
    @exclusivity(unchecked) @usableFromInline var value: Value

    init(_ value: Value, owner: OwnerKey, record: TaskRecord?) {
        self.value = value
        super.init(owner: owner, record: record, route: .own, scope: nil)
    }
}
