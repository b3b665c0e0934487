// Scopes of `.thread` Locals and custom discriminators: the scope changes the current key's value
// and puts the old one back when it ends. Nothing is inherited.

/// A backend whose scopes swap the current key's value in and out (`.thread`, sessions).
protocol SwappedScopes<Value>: AnyObject {
    associatedtype Value: Sendable
    /// What a scope restores.
    associatedtype Saved

    /// Changes the current key's value for a scope; returns what to restore. `change` runs on a
    /// copy with no lock held.
    func swapIn(_ change: (inout Value) -> Void) -> Saved

    /// Puts a scope's saved value back, into the key's storage as it is now: after a `reset()`
    /// inside the scope, into the storage a touch made again. Storage dropped by
    /// `discard(key:)` inside the scope stays dropped, made again by a touch there or not: a scope
    /// never brings back a discarded session or an exited thread's value.
    func restore(_ saved: Saved)
}

/// What a `.thread` scope restores: the thread, its cell (held, so that a cell made again after a
/// discard inside the scope is not taken for it), and its value before the scope.
@usableFromInline
struct ThreadSaved<Value: Sendable> {
    let owner: OwnerKey
    let cell: Cell<Value>
    let value: Value
}

extension CellStorage: SwappedScopes {
    /// A `.thread` scope (see `SwappedScopes`); the thread's cell is found again if `change`
    /// dropped it.
    @usableFromInline
    func swapIn(_ change: (inout Value) -> Void) -> ThreadSaved<Value> {
        let found = holdCell()
        var changed = found.cell.takeUnretainedValue().own.value
        change(&changed)
        let cell = (isStillHeld(found) ? found.cell : holdCell().cell).takeUnretainedValue().own
        swap(&changed, &cell.value)
        if !cell.isListed {
            list(cell)  // a value of the thread's own now: snapshots take it
        }
        return ThreadSaved(owner: cell.owner, cell: cell, value: changed)
    }

    @usableFromInline
    func restore(_ saved: ThreadSaved<Value>) {
        if isCurrent(saved.owner) {
            guard let cell = existingCell() else { return }
            // A cell made again after a discard inside the scope gets nothing back; one made again
            // after a reset does (the scope undoes the reset, as a `.task` scope does).
            if cell !== saved.cell, tables.withLock({ _ in saved.cell.wasDiscarded }) { return }
            var replaced = saved.value
            swap(&replaced, &cell.own.value)
            withExtendedLifetime(replaced) {}  // after the swap: its deinit may use this Local
        } else {
            // An async scope that ended on another thread: the owner may be reading its cell.
            replaceCell(of: saved.owner, with: saved.value, startedOn: saved.cell)
        }
    }
}

extension SessionStorage: SwappedScopes {
    func swapIn(_ change: (inout Value) -> Void) -> SessionScopeSaved<Value> {
        sessions.swapIn(change, self)
    }

    func restore(_ saved: SessionScopeSaved<Value>) {
        sessions.restore(saved)
    }
}
