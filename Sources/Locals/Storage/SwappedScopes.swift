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

    /// Puts a scope's saved value back, into the key's storage as it is now. Storage dropped
    /// inside the scope (by `reset()` or `discard(key:)`) stays dropped: a scope never brings back
    /// a discarded session or an exited thread's value.
    func restore(_ saved: Saved)
}

/// What a `.thread` scope restores: the thread and its value before the scope.
@usableFromInline
struct ThreadSaved<Value: Sendable> {
    let owner: OwnerKey
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
        return ThreadSaved(owner: cell.owner, value: changed)
    }

    @usableFromInline
    func restore(_ saved: ThreadSaved<Value>) {
        if isCurrent(saved.owner) {
            guard let cell = existingCell()?.own else { return }
            var replaced = saved.value
            swap(&replaced, &cell.value)
            withExtendedLifetime(replaced) {}  // after the swap: its deinit may use this Local
        } else {
            // An async scope that ended on another thread: the owner may be reading its cell.
            replaceCell(of: saved.owner, with: saved.value)
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
