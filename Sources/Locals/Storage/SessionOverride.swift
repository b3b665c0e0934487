public import Synchronization

/// The session a snapshot's `run` makes current: bound in the Local's `sessionOverride`
/// task-local for the run, and so also in every child task created inside the run, for as long as
/// that child runs.
///
/// Inside its binding the captured session is the only one, whatever the discriminator says: if
/// the session was discarded meanwhile (its cell is empty), an access finds that same key's cell
/// again, made afresh from the initializer on its first touch, as anywhere else the key is
/// current. It never falls through to the discriminator's key, which there is some other
/// session's (or none).
///
/// Each override counts itself in `Storage.sessionOverrides` from its making to its release, so
/// that the count is not zero while any task can see one: an access looks for an override only
/// while the count is not zero (a task-local read costs more than the rest of a cached session
/// access), and a child that outlives its run still finds its override, whatever other threads
/// do meanwhile.
@usableFromInline
final class SessionOverride<Value: Sendable>: @unchecked Sendable {
    // @unchecked: both stored properties are set once, in `init`; a weak reference is safe to
    // read from any thread.

    @usableFromInline let cell: SessionCell<Value>
    /// Weak: no snapshot and no child task keeps a Local alive.
    private weak var storage: Storage<Value>?

    @usableFromInline
    init(_ cell: SessionCell<Value>, _ storage: Storage<Value>) {
        self.cell = cell
        self.storage = storage
        storage.sessionOverrides.add(1, ordering: .relaxed)
    }

    deinit {
        storage?.sessionOverrides.subtract(1, ordering: .relaxed)
    }
}

extension Storage {
    /// The session override the running task sees, if any.
    @inlinable
    @inline(__always)
    func currentSessionOverride() -> SessionOverride<Value>? {
        sessionOverrides.load(ordering: .relaxed) != 0 ? sessionOverride.get() : nil
    }

    /// Whether the running context has a key (see ``Local/hasCurrentKey``).
    var hasCurrentKey: Bool {
        kind != .custom || currentSessionOverride() != nil || sessions.unsafelyUnwrapped.hasCurrentKey()
    }

    /// The running context's session cell if it has one, made on no first touch. Inside a run
    /// whose session was discarded and not touched since, the captured (empty) cell: it still
    /// names the session, which a snapshot captured here then carries on.
    ///
    /// Inlinable, so that a capture (which asks every session Local) runs it specialized.
    @inlinable
    func existingSessionCell() -> SessionCell<Value>? {
        if let override = currentSessionOverride() {
            return sessions.unsafelyUnwrapped.existingCell(sameKeyAs: override.cell) ?? override.cell
        }
        let me = UnsafeRawPointer(Unmanaged.passUnretained(self).toOpaque())
        guard let cell = currentSessionCell.unsafelyUnwrapped.existingCell(me) else { return nil }
        return Unmanaged<SessionCell<Value>>.fromOpaque(cell).takeRetainedValue()
    }

    /// `cell` (locked) if it is still live, else the running context's session cell now, locked:
    /// user code ran since `cell` was found (a scope's change, the body of `update`), and may
    /// have dropped the session (`reset()`, `discard(key:)`), whose key then has new storage.
    func liveSessionCell(_ cell: SessionCell<Value>) -> SessionCell<Value> {
        if cell.isLive {
            return cell
        }
        cell.unlock()
        guard let current = lockedSessionCell() else { missingKeyForWrite() }
        return current
    }

    /// The live cell of an override's session, locked: the captured one, or, once that was
    /// discarded, the key's cell now (made on first touch).
    @usableFromInline
    func lockedSessionCell(of override: SessionOverride<Value>) -> SessionCell<Value> {
        var cell = override.cell
        while true {
            cell.lock()
            if cell.isLive {
                return cell
            }
            cell.unlock()
            forgetSessionCell(cell)
            cell = sessions.unsafelyUnwrapped.cell(sameKeyAs: override.cell, self)
        }
    }
}
