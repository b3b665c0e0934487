/// A `.thread` cell keeps the part the last capture took of its value, and hands the same part to
/// every later capture on its thread while the value stays as it was: a thread that captures on
/// every hop (an event loop's, say) copies its `.thread` values once per change, not once per
/// capture, and a capture takes one reference where it took an allocation and a copy.
///
/// The rules that keep it right:
/// - Every change of the value drops the kept part first (`valueWillChange`). The part then holds
///   the value as it still is, so releasing it releases only references the cell holds too: no
///   deinit runs, and no replaced value outlives its replacement because of the part.
/// - A change that runs user code in the middle (`update`'s body, a key path's computed setter)
///   may capture, and so keep a part of a value that is then changed: the change drops that part
///   when it ends (`valueDidChange`). Where the cell is held strongly (`update`) it is released
///   there; else (inside a write, whose cell is only borrowed) it is parked on the thread and
///   released at the thread's next capture.
/// - A capture hands out the kept part only where the value is still the same bit for bit, as a
///   guard: the part holds a copy, so every reference-counted buffer in the value is shared and
///   cannot change in place. Bits that differ for an unchanged value (padding, a dead weak
///   reference, an existential's unused bytes) only make a new part, never a wrong one; the part it
///   replaces is parked, since a capture holds the cell unretained.
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
        let replaced = extras.take()
        extras = part
        extrasIsThreadPart = true
        if let replaced {
            ThreadContext.park(replaced)
        }
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

    /// The kept part holds the value as it still is (see above): releasing it here, inside the
    /// access, runs no deinit.
    @usableFromInline
    final func dropThreadPart() {
        let kept = extras.take()
        extrasIsThreadPart = false
        withExtendedLifetime(kept) {}
    }

    /// Drops a part that a capture made while the value was being changed (by user code in the
    /// middle of the change): released now where the caller holds the cell strongly (`isHeld`),
    /// else parked until the thread's next capture.
    @inlinable
    @inline(__always)
    final func valueDidChange(isHeld: Bool) {
        if extrasIsThreadPart {
            dropChangedThreadPart(isHeld: isHeld)
        }
    }

    @usableFromInline
    final func dropChangedThreadPart(isHeld: Bool) {
        let kept = extras.take()
        extrasIsThreadPart = false
        guard let kept else { return }
        if isHeld {
            withExtendedLifetime(kept) {}  // may run a deinit of the value's: the cell stays
        } else {
            ThreadContext.park(kept)
        }
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
