extension Storage {
    // MARK: Scopes of .thread and custom discriminators

    /// What a `.thread` or custom scope restores.
    @usableFromInline
    enum Swapped {
        case thread(OwnerKey, Value)
        case session(SessionScopeSaved<Value>)
    }

    /// Changes the current key's value for a `.thread` or custom scope; returns what to restore.
    /// `change` runs on a copy with no lock held; a thread's cell is found again if it dropped it.
    @usableFromInline
    func swapIn(_ change: (inout Value) -> Void) -> Swapped {
        if kind == .custom {
            return .session(sessions.unsafelyUnwrapped.swapIn(change, self))
        }
        let found = holdCell()
        var changed = found.cell.takeUnretainedValue().own.value
        change(&changed)
        let cell = (isStillHeld(found) ? found.cell : holdCell().cell).takeUnretainedValue().own
        swap(&changed, &cell.value)
        if !cell.isListed {
            list(cell)  // a value of the thread's own now: snapshots take it
        }
        return .thread(cell.owner, changed)
    }

    /// Puts a `.thread` or custom scope's saved value back, into the key's storage as it is now.
    /// Storage dropped inside the scope (by `reset()` or `discard(key:)`) stays dropped: a scope
    /// never brings back a discarded session or an exited thread's value.
    @usableFromInline
    func restore(_ saved: Swapped) {
        switch saved {
        case .session(let saved):
            sessions.unsafelyUnwrapped.restore(saved)
        case .thread(let owner, let value):
            if isCurrent(owner) {
                guard let cell = existingCell()?.own else { return }
                var replaced = value
                swap(&replaced, &cell.value)
                withExtendedLifetime(replaced) {}  // after the swap: its deinit may use this Local
            } else {
                // An async scope that ended on another thread: the owner may be reading its cell.
                replaceCell(of: owner, with: value)
            }
        }
    }
}
