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
    @usableFromInline var storage: Unmanaged<Storage<Value>>
    @usableFromInline var cell: Unmanaged<Cell<Value>>?
    @usableFromInline var epoch: UInt = 0
    @usableFromInline var frame: ScopeFrame<Value>?
    @usableFromInline var other: AnyObject?
    @usableFromInline var kind: Kind

    @inlinable
    init(_ storage: Unmanaged<Storage<Value>>, _ kind: Kind) {
        self.storage = storage
        self.kind = kind
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
