// What a `LocalsSnapshot` takes from each Local, and how `run` puts it back on the running task
// or thread. The rules, for a `.task` Local:
//
// - A context inside a scope sees it, in `run`, as a child created at the capture point would,
//   by the scope's policy: `.copy` a copy of the scope's value (taken at the first access inside
//   a synchronous `run`, when an `async` one starts), `.fresh` the initial value, `.shared` the
//   scope's value itself, `.overlay` reads through to it.
// - A context that reads through a scope by reference (a `.shared` scope's child, an `.overlay`
//   child, with its own writes) reads through to it the same way in `run`.
// - A context's own value (outside any scope, or a `.copy` or `.fresh` child's) is copied.
// - Inside `run` the running context's cell takes that route, as a scope does, and restores it
//   afterwards; the Local's task-local publishes the scope to children created inside `run`.
//
// A `.thread` Local's value is copied and swapped in for `run`, as a `.thread` scope does. A
// custom discriminator's session is captured by reference: inside `run` it is the current session,
// whatever the discriminator says, and writes go to it.
//
// Everything here is inlinable and reached through closures made in each backend's `snapshotOps()`, where the
// value type is concrete: a snapshot mixes Locals of every value type, and code that is not
// specialized for one looks up generic metadata at every step, several times slower.

/// One Local's part of a snapshot: what the context held (`data`) and how to put it back (`ops`).
struct SnapshotPart: Sendable {
    let data: any Sendable & AnyObject
    let ops: SnapshotOps

    /// The Local, its value and where it came from, on one line.
    func listing() -> String { ops.listing(data) }

    /// Puts this part in place for the running task or thread, with what undoes it in `slot` (see
    /// `SnapshotRun`); false if its Local is gone.
    func open(at slot: UnsafeMutableRawPointer) -> Bool { ops.open(data, slot) }
}

/// What snapshots do with one Local: closures made once, in each backend's `registered()`, where the
/// Local's value type is concrete, holding the storage weakly.
@usableFromInline
final class SnapshotOps: Sendable {
    /// The Local's id (see `LocalIDs`).
    let localID: UInt64
    /// Whether the Local is still alive.
    let isAlive: @Sendable () -> Bool
    /// Whether the Local is a `.thread` Local.
    let holdsThreadValues: Bool
    /// What the running context holds of the Local beyond its scopes: its own value as a frame in
    /// front of the given chain (`link`), or a part (`data`), or neither.
    /// (The chain unretained: the capture holds it; a frame in front retains it.)
    let capture: @Sendable (Unmanaged<ScopeLink>?) -> (link: ScopeLink?, data: PartNode?)
    /// The part for a scope of this Local found in a captured chain.
    let scopePart: @Sendable (ScopeLink) -> any Sendable & AnyObject
    /// Puts a synchronous run's view of the Local (the storage, then the scope of the captured
    /// chain, or the part the run put in place at its start, then the cell) in place for the
    /// running context, with what takes it away in the record; and takes it away.
    /// (Only `.task` Locals call these: the others have no views. Not optional: a closure called
    /// out of an optional goes through a reabstraction thunk allocated afresh on every call.)
    let enterView: @Sendable (AnyObject, Unmanaged<ScopeLink>?, AnyObject?, AnyObject, Bool, UInt, RunUndo) -> Bool
    let leaveView: @Sendable (RunUndo, AnyObject) -> Void
    let listing: @Sendable (AnyObject) -> String
    /// A run's steps (see `SnapshotRun`): put the part in place and keep what undoes it in a slot
    /// (false if the Local is gone); publish it to child tasks (true if that bound a task-local),
    /// or run a body with it published; take it away (unbinding first if asked).
    let open: @Sendable (AnyObject, UnsafeMutableRawPointer) -> Bool
    let publish: @Sendable (UnsafeMutableRawPointer) -> Bool
    let withPublished: @Sendable (UnsafeMutableRawPointer, () -> Void) -> Void
    let withPublishedAsync: @Sendable (UnsafeMutableRawPointer, isolated (any Actor)?, () async -> Void) async -> Void
    let close: @Sendable (UnsafeMutableRawPointer, Bool) -> Void

    @usableFromInline
    init(
        localID: UInt64,
        isAlive: @escaping @Sendable () -> Bool,
        holdsThreadValues: Bool,
        capture: @escaping @Sendable (Unmanaged<ScopeLink>?) -> (link: ScopeLink?, data: PartNode?),
        scopePart: @escaping @Sendable (ScopeLink) -> any Sendable & AnyObject,
        enterView: @escaping @Sendable (AnyObject, Unmanaged<ScopeLink>?, AnyObject?, AnyObject, Bool, UInt, RunUndo) -> Bool,
        leaveView: @escaping @Sendable (RunUndo, AnyObject) -> Void,
        listing: @escaping @Sendable (AnyObject) -> String,
        open: @escaping @Sendable (AnyObject, UnsafeMutableRawPointer) -> Bool,
        publish: @escaping @Sendable (UnsafeMutableRawPointer) -> Bool,
        withPublished: @escaping @Sendable (UnsafeMutableRawPointer, () -> Void) -> Void,
        withPublishedAsync: @escaping @Sendable (UnsafeMutableRawPointer, isolated (any Actor)?, () async -> Void) async -> Void,
        close: @escaping @Sendable (UnsafeMutableRawPointer, Bool) -> Void
    ) {
        self.localID = localID
        self.isAlive = isAlive
        self.holdsThreadValues = holdsThreadValues
        self.capture = capture
        self.scopePart = scopePart
        self.enterView = enterView
        self.leaveView = leaveView
        self.listing = listing
        self.open = open
        self.publish = publish
        self.withPublished = withPublished
        self.withPublishedAsync = withPublishedAsync
        self.close = close
    }
}

/// What a context held of one Local, for a snapshot.
///
/// Kept in stored properties with a tag (a copied value in the subclass `ValuePartData`), rather
/// than as the `Kind` enum itself: a class's deinit is not specialized for its value type, and
/// destroying a generic enum, or an optional `Value`, there looks up type metadata at run time,
/// every time a snapshot goes (a few hundred instructions a part). `kind` puts the enum together
/// for listings; `run` reads the stored properties in place.
@usableFromInline
class PartData<Value: Sendable>: PartNode, @unchecked Sendable {
    // @unchecked: immutable; frames are read and written only under their locks or by the task
    // whose cell routes there, and a layer is copied before use.
    @usableFromInline
    enum Kind {
        /// A `.task` context's own value: copied.
        case value(Value)
        /// A scope the context is in: seen as a child created here would, by its policy.
        case scope(ScopeFrame<Value>)
        /// An `.overlay` child's view: the scope, read through, with a copy of its writes.
        case overlay(ScopeFrame<Value>, OverlayLayer<Value>)
        /// A `.thread` Local's value: copied.
        case thread(Value)
        /// A custom discriminator's session.
        case session(SessionCell<Value>)
    }

    @usableFromInline final let tag: PartTag
    @usableFromInline final let frame: ScopeFrame<Value>?
    @usableFromInline final let layer: OverlayLayer<Value>?
    @usableFromInline final let session: SessionCell<Value>?

    @inlinable
    init(tag: PartTag, frame: ScopeFrame<Value>? = nil, layer: OverlayLayer<Value>? = nil, session: SessionCell<Value>? = nil) {
        self.tag = tag
        self.frame = frame
        self.layer = layer
        self.session = session
        super.init()
    }

    @inlinable
    static func make(_ kind: Kind) -> PartData<Value> {
        switch kind {
        case .value(let value): ValuePartData(tag: .value, value: value)
        case .scope(let frame): PartData(tag: .scope, frame: frame)
        case .overlay(let frame, let layer): PartData(tag: .overlay, frame: frame, layer: layer)
        case .thread(let value): ValuePartData(tag: .thread, value: value)
        case .session(let cell): PartData(tag: .session, session: cell)
        }
    }

    @usableFromInline
    final var kind: Kind {
        switch tag {
        case .value: .value(unsafeDowncast(self, to: ValuePartData<Value>.self).value)
        case .scope: .scope(frame.unsafelyUnwrapped)
        case .overlay: .overlay(frame.unsafelyUnwrapped, layer.unsafelyUnwrapped)
        case .thread: .thread(unsafeDowncast(self, to: ValuePartData<Value>.self).value)
        case .session: .session(session.unsafelyUnwrapped)
        }
    }
}

/// A part that holds a copied value (`.value`, `.thread`).
@usableFromInline
final class ValuePartData<Value: Sendable>: PartData<Value>, @unchecked Sendable {
    /// Never changed after the part is made (a `var` only so that `holdsTheSameBits` can read its
    /// bytes in place).
    @exclusivity(unchecked) @usableFromInline var value: Value

    @inlinable
    init(tag: PartTag, value: Value) {
        self.value = value
        super.init(tag: tag)
    }
}

/// Which of `PartData.Kind`'s cases a part holds.
@usableFromInline
enum PartTag: UInt8, Sendable {
    case value, scope, overlay, thread, session
}

/// A weak reference that never changes: a closure reads it without the dynamic exclusivity check
/// that a `[weak self]` capture (a variable) costs on every call, about 60 instructions of a
/// capture's visit to a Local.
@usableFromInline
final class WeakReference<Object: AnyObject>: @unchecked Sendable {
    // @unchecked: `object` is immutable; the object's own Sendable conformance covers its use.
    @usableFromInline weak let object: Object?

    @inlinable
    init(_ object: Object) {
        self.object = object
    }
}

extension Storage {
    /// Snapshot operations from a backend's own steps (capturing, putting a part in place, a
    /// synchronous run's views), with those every backend shares. Made where `Value` is concrete.
    @inlinable
    func makeSnapshotOps(
        holdsThreadValues: Bool,
        capture: @escaping @Sendable (Unmanaged<ScopeLink>?) -> (link: ScopeLink?, data: PartNode?),
        open: @escaping @Sendable (AnyObject, UnsafeMutableRawPointer) -> Bool,
        enterView: @escaping @Sendable (AnyObject, Unmanaged<ScopeLink>?, AnyObject?, AnyObject, Bool, UInt, RunUndo) -> Bool = {
            _, _, _, _, _, _, _ in preconditionFailure("swift-locals: only a .task Local has a run's views")
        },
        leaveView: @escaping @Sendable (RunUndo, AnyObject) -> Void = { _, _ in
            preconditionFailure("swift-locals: only a .task Local has a run's views")
        }
    ) -> SnapshotOps {
        SnapshotOps(
            localID: localID,
            isAlive: { [weak self] in self != nil },  // rare: a debug description's listing
            holdsThreadValues: holdsThreadValues,
            capture: capture,
            scopePart: { link in PartData.make(.scope(unsafeDowncast(link, to: ScopeFrame<Value>.self))) },
            enterView: enterView,
            leaveView: leaveView,
            listing: { [description = facts.description] data in
                Self.listing(description, unsafeDowncast(data, to: PartData<Value>.self).kind)
            },
            open: open,
            publish: { slot in PartInPlace<Value>.publish(at: slot) },
            withPublished: { slot, body in PartInPlace<Value>.withPublished(at: slot, body) },
            withPublishedAsync: { slot, isolation, body in await PartInPlace<Value>.withPublished(at: slot, isolation, body) },
            close: { slot, unbind in PartInPlace<Value>.close(at: slot, unbind: unbind) }
        )
    }

    /// Adds this storage to the live Locals that snapshots capture, with `ops`.
    @usableFromInline
    func register(_ ops: SnapshotOps, isSession: Bool, captured: Bool = true, askedOnce: SessionAsk? = nil) {
        self.ops = ops
        LiveLocals.add(localID, ops, isSession: isSession, captured: captured, askedOnce: askedOnce)
    }

    @usableFromInline
    static func listing(_ local: String, _ kind: PartData<Value>.Kind) -> String {
        switch kind {
        case .value(let value):
            return "\(local) = \(value) (its own value, copied)"
        case .scope(let frame) where frame.isCopiedValue:
            return "\(local) = \(frame.loadValue()) (its own value, copied)"
        case .scope(let frame):
            return "\(local) = \(frame.loadValue()) (a .\(frame.inheritance) scope opened at \(frame.origin))"
        case .overlay(let frame, let layer):
            var view = frame.loadValue()
            layer.apply(to: &view)
            return "\(local) = \(view) (reading through the .overlay scope opened at \(frame.origin))"
        case .thread(let value):
            return "\(local) = \(value) (the capturing thread's value, copied)"
        case .session(let cell):
            // Copied under the lock, described after it: a description is user code.
            let value = cell.withLock { cell.isLive ? cell.value.pointee : nil }
            return "\(local) = \(value.map { "\($0)" } ?? "(discarded)") (the session \(cell.keyDescription))"
        }
    }
}

extension CellStorage {
    /// Adds this storage to the live Locals that snapshots capture, with a capture made here,
    /// where the value type is concrete.
    @inlinable
    func registered() -> CellStorage<Value> {
        register(snapshotOps(), isSession: false)
        return self
    }

    /// This storage's snapshot operations, made here, where `Value` is concrete.
    @inlinable
    func snapshotOps() -> SnapshotOps {
        let weakSelf = WeakReference(self)
        return makeSnapshotOps(
            holdsThreadValues: !holdsTasks,
            capture: { chain in
                guard let storage = weakSelf.object else { return (nil, nil) }
                guard storage.holdsTasks else { return (nil, storage.capturePart()) }  // a `.thread` value
                if let value = storage.ownValue() {
                    let frame = ScopeFrame(
                        value: value, localID: storage.localID, inheritance: .copy, owner: .noKey, savedRoute: .own,
                        savedScope: nil, origin: .unopened
                    )
                    frame.isCopiedValue = true
                    frame.link(owning: chain?.takeUnretainedValue())
                    return (frame, nil)
                }
                return (nil, storage.capturePart())
            },
            open: { data, slot in
                guard let storage = weakSelf.object else { return false }  // the Local is gone: nothing to put back
                // The reference the weak load made is kept for the run, and released by `close`.
                let part = unsafeDowncast(data, to: PartData<Value>.self)
                let retained = Unmanaged.passRetained(consume storage)
                retained._withUnsafeGuaranteedRef { $0.open(part, at: slot, retained) }
                return true
            },
            enterView: { storage, view, part, cell, madeInitial, epoch, undo in
                unsafeDowncast(storage, to: CellStorage<Value>.self).enterRunView(
                    view, part: part, on: unsafeDowncast(cell, to: Cell<Value>.self), madeInitial: madeInitial,
                    epoch: epoch, undo
                )
            },
            leaveView: { undo, storage in
                let storage = unsafeDowncast(storage, to: CellStorage<Value>.self)
                let frame = unsafeDowncast(undo.frame.take().unsafelyUnwrapped, to: ScopeFrame<Value>.self)
                undo.operations = nil
                if let redirect = undo.redirect.take() {
                    storage.undo(unsafeDowncast(redirect, to: UndoBox<Redirect>.self).saved, lazyView: true)
                    withExtendedLifetime(frame) {}
                } else {
                    // A write to the view listed the cell, so that a capture inside the run took
                    // the view's value: the cell goes back as listed (or not) as it was before.
                    let cell = Unmanaged<Cell<Value>>.fromOpaque(undo.cell.unsafelyUnwrapped)
                    undo.cell = nil
                    if storage.isStillHeld(HeldCell(cell: cell, epoch: undo.epoch)) {
                        cell._withUnsafeGuaranteedRef { $0.isListed = undo.wasListed }
                    } else {
                        storage.relistSlowly(frame, undo.wasListed)
                    }
                    storage.closeScope(cell, frame, undo.epoch)
                }
            }
        )
    }

    /// The running context's own value of this `.task` Local, if a snapshot takes it: written
    /// outside a scope, or copied from a `.copy` scope, or a frozen `.overlay` child's.
    @inlinable
    func ownValue() -> Value? {
        guard holdsTasks, let cell = existingCell() else { return nil }
        switch cell.route {
        case .own:
            return cell.isListed ? cell.own.value : nil
        case .scope:
            // A frozen `.overlay` child's private frame, or a synchronous run's view (never in the
            // chain), holds a value of the context's own; any other scope is in the chain.
            let frame = cell.scope.unsafelyUnwrapped
            return frame.isPrivate || frame.isRunView ? frame.value : nil
        case .sharedScope, .overlay:
            return nil
        }
    }

    /// What the running context holds of this Local beyond the scopes in its chain (which a
    /// snapshot takes by reference), or nil: its own value (outside any scope, or a `.copy` or
    /// `.fresh` child's), an `.overlay` child's own writes, a `.thread` value.
    @inlinable
    func capturePart() -> PartData<Value>? {
        guard holdsTasks else {
            // The cached cell unretained, as a read takes it: a removal parks what its owner may
            // be using.
            if let cell = cachedCell() {
                return cell._withUnsafeGuaranteedRef { $0.isListed ? $0.threadPart() : nil }
            }
            return existingCellSlowly().flatMap { $0.isListed ? $0.threadPart() : nil }
        }
        guard let cell = existingCell() else { return nil }
        switch cell.route {
        case .own:
            // Only a value of the context's own: written, or copied from a scope.
            return cell.isListed ? PartData.make(.value(cell.own.value)) : nil
        case .scope:
            // A frozen `.overlay` child's private frame is its own value; any other is in the chain.
            let frame = cell.scope.unsafelyUnwrapped
            return frame.isPrivate ? PartData.make(.value(frame.value)) : nil
        case .sharedScope:
            return nil
        case .overlay:
            let layer = cell.overlay.unsafelyUnwrapped.layer
            return layer.isEmpty ? nil : PartData.make(.overlay(cell.scope.unsafelyUnwrapped, layer.copy()))
        }
    }
}
