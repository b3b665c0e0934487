/// An `.overlay` route's writes on top of its scope's live value, and the merged view it reads.
///
/// While the child has written nothing, it reads the scope's value in place. Once it has, it
/// reads a merged copy (the scope's value with the layer replayed on it), made again only when
/// the scope's value or the layer changed since: the scope's version tells. Touched by the cell's
/// owner only.
@usableFromInline
final class OverlayState<Value: Sendable> {
    @usableFromInline let layer: OverlayLayer<Value>
    /// The merged view, in memory of its own so that a read projects it in place; valid while
    /// `mergedVersion` is the scope's version and the layer has not changed.
    @exclusivity(unchecked) @usableFromInline var merged: UnsafeMutablePointer<Value>?
    @exclusivity(unchecked) @usableFromInline var mergedVersion: UInt = 0
    @exclusivity(unchecked) @usableFromInline var mergedIsCurrent = false

    @usableFromInline
    init(_ layer: OverlayLayer<Value>) {
        self.layer = layer
    }

    @usableFromInline
    convenience init() {
        self.init(OverlayLayer())
    }

    deinit {
        if let merged {
            if mergedIsStored {
                merged.deinitialize(count: 1)
            }
            merged.deallocate()
        }
    }

    /// Whether `merged` holds a value (it may be stale).
    @exclusivity(unchecked) @usableFromInline var mergedIsStored = false

    /// A merged view replaced by `beginRead`, released by `endRead` after the lock.
    @exclusivity(unchecked) @usableFromInline var replaced: Value?

    /// Locks `frame` and points to the child's view: nil while the child has written nothing
    /// (it reads the scope's value in place), else the merged view, made again if it is stale.
    /// The caller projects what it reads, then calls `endRead`. Split this way so that the caller
    /// applies its key path inline, with no closure that would need the key path as an object.
    /// (Inlinable, not inlined: so that the caller's module specializes it for its value type.)
    @inlinable
    @inline(never)
    func beginRead(_ frame: ScopeFrame<Value>) -> UnsafeMutablePointer<Value>? {
        frame.lock()
        if layer.isEmpty {
            return nil
        }
        if mergedIsCurrent, mergedVersion == frame.version, let merged {
            return merged
        }
        var fresh = frame.value
        layer.apply(to: &fresh)
        let storage = merged ?? .allocate(capacity: 1)
        merged = storage
        if mergedIsStored {
            replaced = storage.move()
        }
        storage.initialize(to: fresh)
        mergedIsStored = true
        mergedIsCurrent = true
        mergedVersion = frame.version
        return storage
    }

    /// Ends what `beginRead` began: unlocks `frame`, then releases the view it replaced (its
    /// deinit may use this Local).
    @inlinable
    @inline(never)
    func endRead(_ frame: ScopeFrame<Value>) {
        frame.unlock()
        if replaced != nil {
            let dropped = replaced.take()
            withExtendedLifetime(dropped) {}
        }
    }

    /// A frozen child's own value (see `Cell.freeze`): the one frame only this cell keeps.
    @exclusivity(unchecked) var frozen: ScopeFrame<Value>?

    /// The cell's spare frame while the cell has an overlay (see `Cell.takeSpare`).
    @exclusivity(unchecked) @usableFromInline var spare: ScopeFrame<Value>?

    /// The layer changed: the merged view must be made again at the next read.
    func layerChanged() {
        mergedIsCurrent = false
    }
}

/// The writes an `.overlay` child made on top of its scope's live value, each to a stored part of
/// the value (a stored property, or a stored property of one), in order; a later write to the
/// same part replaces the earlier one.
///
/// Only stored parts are recorded, because only they exist in every value of the type: a write
/// through a subscript (`\.list[1]`), a force-unwrap or a computed property could trap when
/// replayed on the owner's live value after the owner shrank the array or cleared the optional.
/// Such a write freezes the child's view instead (see `Cell.freeze`).
@usableFromInline
final class OverlayLayer<Value>: @unchecked Sendable {
    // @unchecked: a layer belongs to one cell's owner; a snapshot takes a copy of it.
    @usableFromInline
    struct Write {
        /// The bytes of the value the write covers.
        let range: Range<Int>
        let apply: (inout Value) -> Void
    }

    @exclusivity(unchecked) @usableFromInline private(set) var writes: [Write] = []

    init() {}

    @usableFromInline var isEmpty: Bool { writes.isEmpty }

    /// A layer with the same writes (for a snapshot: the writes hold only copies of values).
    @usableFromInline
    func copy() -> OverlayLayer<Value> {
        let copy = OverlayLayer()
        copy.writes = writes
        return copy
    }

    /// Drops every write; hands them back, to be released once the layer is whole again.
    func clear() -> [Write] {
        let dropped = writes
        writes = []
        return dropped
    }

    /// Records a write of `newValue` to the stored part of the value at `offset` (whose type is
    /// `T`). A write to exactly the same bytes replaces the earlier one (the later write alone
    /// decides them); the replaced write (and the value it holds) is released after the layer is
    /// whole again: its deinit may read this very Local.
    ///
    /// The replay writes through a pointer at the offset, with no key path: for a key path that
    /// `MemoryLayout.offset(of:)` gives an offset for, that is the same access, and it lets the
    /// caller never build the key path object.
    func record<T>(offset: Int, _ newValue: T) {
        let range = offset..<offset + MemoryLayout<T>.size
        var kept = writes
        kept.removeAll { $0.range == range }
        kept.append(
            Write(range: range) { value in
                withUnsafeMutablePointer(to: &value) { pointer in
                    UnsafeMutableRawPointer(pointer).advanced(by: offset).assumingMemoryBound(to: T.self).pointee = newValue
                }
            }
        )
        let replaced = writes
        writes = kept
        withExtendedLifetime(replaced) {}
    }

    /// Whether a read of the `size` bytes at `offset` may see one of the child's writes.
    func overlaps(offset: Int, size: Int) -> Bool {
        let range = offset..<offset + size
        return writes.contains { $0.range.overlaps(range) }
    }

    @usableFromInline
    func apply(to value: inout Value) {
        for write in writes {
            write.apply(&value)
        }
    }
}
