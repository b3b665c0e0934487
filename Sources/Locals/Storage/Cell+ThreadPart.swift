/// A `.thread` cell keeps the part the last capture took of its value, and hands the same part to
/// every later capture on its thread while the value stays as it was: a thread that captures on
/// every hop (an event loop's, say) copies its `.thread` values once per change, not once per
/// capture, and a capture takes one reference where it took an allocation and a copy.
///
/// "As it was" is decided bit for bit: the kept part holds a copy of the value, so every
/// reference-counted buffer in the value is shared and cannot be changed in place; a change makes
/// new bits. (Bits that differ in padding only make a new part, never a wrong one.) On top of
/// that, every change of the value drops the kept part first (`valueWillChange`), so that the part
/// never keeps a replaced value alive: an object that the value held goes when the value lets go
/// of it, as without the part.
extension Cell {
    /// The part a capture takes of this `.thread` cell's value (an `OwnedCell` on its own value):
    /// the kept one where the value has not changed, else a new one, kept for the next capture.
    /// Only the cell's thread calls this. (Inlinable, as the capture that calls it: unspecialized,
    /// the comparison alone cost more than the rest of the `.thread` part's capture.)
    @inlinable
    final func threadPart() -> ValuePartData<Value> {
        let own = self.own
        if extrasIsThreadPart {
            let kept = unsafeDowncast(extras.unsafelyUnwrapped, to: ValuePartData<Value>.self)
            if kept.holdsTheSameBits(as: own) {
                return kept
            }
        }
        let part = ValuePartData(tag: .thread, value: own.value)
        part.isShared = true
        // What this replaces holds the same value bit for bit (`valueWillChange` dropped any
        // other), so releasing it here runs no deinit of the value's.
        extras = part
        extrasIsThreadPart = true
        return part
    }

    /// Drops the kept part of a `.thread` cell before its value changes. (An inlined test of a
    /// flag on every write to a value of a cell's own; the drop is out of line.)
    @inlinable
    @inline(__always)
    final func valueWillChange() {
        if extrasIsThreadPart {
            dropThreadPart()
        }
    }

    /// The kept part holds the value as it still is (the change has not happened yet): releasing
    /// the part only releases references that the cell holds too, so no deinit of the value's
    /// runs here, inside the access.
    @usableFromInline
    final func dropThreadPart() {
        let kept = unsafeDowncast(extras.unsafelyUnwrapped, to: ValuePartData<Value>.self)
        guard kept.holdsTheSameBits(as: own) else {
            // A change that did not come through here: the next capture replaces the part.
            assertionFailure("swift-locals: a .thread value changed with its kept part in place")
            return
        }
        extras = nil
        extrasIsThreadPart = false
    }
}

extension ValuePartData {
    /// Whether the part's value and `cell`'s are the same bits.
    @inlinable
    final func holdsTheSameBits(as cell: OwnedCell<Value>) -> Bool {
        withUnsafeBytes(of: &value) { kept in
            withUnsafeBytes(of: &cell.value) { current in Platform.sameBytes(kept, current) }
        }
    }
}
