import Synchronization

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
/// Each override counts itself in `SessionStorage.sessionOverrides` from its making to its release, so
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
    private weak var storage: SessionStorage<Value>?

    @usableFromInline
    init(_ cell: SessionCell<Value>, _ storage: SessionStorage<Value>) {
        self.cell = cell
        self.storage = storage
        storage.sessionOverrides.add(1, ordering: .relaxed)
        SessionOverrides.inProcess.add(1, ordering: .relaxed)
    }

    deinit {
        storage?.sessionOverrides.subtract(1, ordering: .relaxed)
        SessionOverrides.inProcess.subtract(1, ordering: .relaxed)
    }
}

/// Every `SessionOverride` of every Local: while there is none, no Local's session is an
/// override, and a capture may take a discriminator's answer for all the Locals of its type (see
/// `SessionAsk`).
enum SessionOverrides {
    static let inProcess = Atomic<Int>(0)
}
