/// One part a synchronous run put in place, kept in its slot (see `SnapshotRun`) until the run
/// takes it away: its storage (retained for the run) and what undoes the part. Plain stored
/// references, small enough that the slots of ten parts fit in a stack buffer, and moved out one
/// by one when the part is taken away, so that a scope's frame goes back to its cell uniquely
/// referenced and is recycled, as when a scope closes.
@usableFromInline
struct PartInPlace<Value: Sendable> {
    @usableFromInline
    enum Kind: UInt8 {
        /// A scope opened on the running context's cell (`cell`, `epoch`), publishing `frame`.
        case scope
        /// The cell redirected into `frame` (the undo in `other`, an `UndoBox` of the redirect): a
        /// scope of the captured chain, which the run publishes as a whole.
        case redirect
        /// A `.thread` value swapped in (the value to put back in `other`, an `UndoBox`).
        case thread
        /// A session override (`other`), published.
        case session
    }

    /// Retained for the run (by the reference `open` was called with).
    @usableFromInline var storage: Unmanaged<AnyObject>
    @usableFromInline var cell: Unmanaged<Cell<Value>>?
    @usableFromInline var epoch: UInt = 0
    @usableFromInline var frame: ScopeFrame<Value>?
    @usableFromInline var other: AnyObject?
    @usableFromInline var kind: Kind

    @inlinable
    init(_ storage: Unmanaged<AnyObject>, _ kind: Kind) {
        self.storage = storage
        self.kind = kind
    }

    /// The storage of a `.scope`, `.redirect` or `.thread` part.
    @inlinable
    var cells: Unmanaged<CellStorage<Value>> { Unmanaged.fromOpaque(storage.toOpaque()) }

    /// The storage of a `.session` part.
    @inlinable
    var sessions: Unmanaged<SessionStorage<Value>> { Unmanaged.fromOpaque(storage.toOpaque()) }
}

extension PartInPlace {
    /// Puts `inPlace` in `slot` (see `SnapshotRun`), which must be large enough.
    @inlinable
    static func store(_ inPlace: consuming PartInPlace<Value>, at slot: UnsafeMutableRawPointer) {
        precondition(
            MemoryLayout<PartInPlace<Value>>.size <= SnapshotRun.slotSize, "swift-locals: snapshot slot too small"
        )
        slot.initializeMemory(as: PartInPlace<Value>.self, to: inPlace)
    }

    /// Publishes the part in `slot` to the child tasks created from now on, as `withValue` does,
    /// without a closure to nest in: a scope opened for the run goes in front of the scope chain,
    /// a session override into the Local's own task-local. Returns whether it bound anything.
    @inlinable
    static func publish(at slot: UnsafeMutableRawPointer) -> Bool {
        let inPlace = slot.assumingMemoryBound(to: PartInPlace<Value>.self)
        switch inPlace.pointee.kind {
        case .scope:
            let frame = inPlace.pointee.frame.unsafelyUnwrapped
            frame.link(to: ScopeChain.unretainedHead)
            ScopeChain.bind(frame, key: ScopeChain.key)
            return true
        case .session:
            let override = unsafeDowncast(inPlace.pointee.other.unsafelyUnwrapped, to: SessionOverride<Value>.self)
            let key = inPlace.pointee.sessions._withUnsafeGuaranteedRef { $0.sessionOverride }
            SnapshotRun.bind(key, to: override)
            return true
        case .redirect, .thread:
            return false
        }
    }

    /// Runs `body` with the part in `slot` published (where the runtime gives no way to bind
    /// without a closure).
    @inlinable
    static func withPublished(at slot: UnsafeMutableRawPointer, _ body: () -> Void) {
        let inPlace = slot.assumingMemoryBound(to: PartInPlace<Value>.self)
        switch inPlace.pointee.kind {
        case .scope:
            let frame = inPlace.pointee.frame.unsafelyUnwrapped
            frame.link(to: ScopeChain.unretainedHead)
            ScopeChain.key.withValue(frame, operation: body)
        case .session:
            let override = unsafeDowncast(inPlace.pointee.other.unsafelyUnwrapped, to: SessionOverride<Value>.self)
            inPlace.pointee.sessions._withUnsafeGuaranteedRef { $0.sessionOverride }.withValue(override, operation: body)
        case .redirect, .thread:
            body()
        }
    }

    @inlinable
    static func withPublished(
        at slot: UnsafeMutableRawPointer, _ isolation: isolated (any Actor)?, _ body: () async -> Void
    ) async {
        let inPlace = slot.assumingMemoryBound(to: PartInPlace<Value>.self)
        switch inPlace.pointee.kind {
        case .scope:
            let frame = inPlace.pointee.frame.unsafelyUnwrapped
            frame.link(to: ScopeChain.unretainedHead)
            await ScopeChain.key.withValue(frame, operation: body, isolation: isolation)
        case .session:
            let override = unsafeDowncast(inPlace.pointee.other.unsafelyUnwrapped, to: SessionOverride<Value>.self)
            let key = inPlace.pointee.sessions._withUnsafeGuaranteedRef { $0.sessionOverride }
            await key.withValue(override, operation: body, isolation: isolation)
        case .redirect, .thread:
            await body()
        }
    }

    /// Takes away the part in `slot`, first unbinding what `publish` bound if `unbind`, and
    /// releases the storage `open` kept for the run.
    @inlinable
    static func close(at slot: UnsafeMutableRawPointer, unbind: Bool) {
        var inPlace = slot.assumingMemoryBound(to: PartInPlace<Value>.self).move()
        if unbind, inPlace.kind == .scope || inPlace.kind == .session {
            SnapshotRun.unbind()
        }
        switch inPlace.kind {
        case .scope:
            let storage = inPlace.cells.takeRetainedValue()
            storage.closeScope(inPlace.cell.unsafelyUnwrapped, inPlace.frame.take().unsafelyUnwrapped, inPlace.epoch)
        case .redirect:
            let storage = inPlace.cells.takeRetainedValue()
            storage.undo(
                unsafeDowncast(inPlace.other.unsafelyUnwrapped, to: UndoBox<CellStorage<Value>.Redirect>.self).saved,
                lazyView: false
            )
        case .thread:
            let storage = inPlace.cells.takeRetainedValue()
            storage.restore(unsafeDowncast(inPlace.other.unsafelyUnwrapped, to: UndoBox<SwappedOut<OwnerKey, Value>>.self).saved)
        case .session:
            inPlace.storage.release()
        }
    }
}

/// What a part or a view puts back when it goes, boxed: a redirected `.task` part's `Redirect`
/// (larger than a slot), a `.thread` part's replaced value (of any size).
@usableFromInline
final class UndoBox<Saved> {
    @usableFromInline let saved: Saved

    @inlinable
    init(_ saved: Saved) {
        self.saved = saved
    }
}
