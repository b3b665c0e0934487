/// One link of a context's scope chain: an open scope of some `.task` Local (a `ScopeFrame`),
/// holding the next scope out.
///
/// Every `.task` scope of every Local binds one task-local, `ScopeChain.key`, to its frame, whose
/// `parent` is what the key held before: so the running context's scoped values, of every Local,
/// hang from one reference. A child task inherits that reference (task-local bindings are
/// inherited), finds a Local's scope by walking from it on its first touch, and a snapshot
/// captures it without visiting any Local. A frame is linked when it is published, before any
/// other task can see it, and unlinked when it is recycled, when no other task can see it.
@usableFromInline
class ScopeLink: LockedBox, @unchecked Sendable {
    /// The Local this scope belongs to (see `LocalIDs`).
    @exclusivity(unchecked) @usableFromInline final var localID: UInt64
    /// The next scope out, of any Local: retained, so that the chain a task or a snapshot holds
    /// stays whole.
    @exclusivity(unchecked) @usableFromInline final var parent: ScopeLink?

    @inlinable
    init(localID: UInt64) {
        self.localID = localID
    }
}

/// The one task-local every `.task` scope binds: the innermost scope of the running context, of
/// any Local. (Also bound by a snapshot's `run`, to a `RunBoundary`.)
@usableFromInline
enum ScopeChain {
    @usableFromInline static let key = TaskLocal<ScopeLink?>(wrappedValue: nil)

    /// The running context's innermost scope, of any Local.
    @inlinable
    static var head: ScopeLink? { key.get() }

    /// The innermost scope of the Local `localID` in the chain that starts at `head`. (Run
    /// boundaries have id 0, which no Local has: a walk passes them, into the captured chain.)
    @inlinable
    static func find(_ localID: UInt64, from head: ScopeLink?) -> ScopeLink? {
        var link = head
        while let current = link {
            if current.localID == localID {
                return current
            }
            link = current.parent
        }
        return nil
    }
}

/// Where a snapshot's `run` starts: the head of the scope chain for the run's duration, in front
/// of the captured chain (its `parent`).
///
/// Every other context that walks the chain through it (a child task created inside the run)
/// passes it into the captured chain, and so inherits as a child created at the capture point.
/// The context that runs the snapshot (its `owner`) had every Local of the snapshot (`placed`)
/// put in place when the run started; for any other Local it sees the chain it had before
/// (`outside`): a first touch inside the run makes its cell as it would have been outside the
/// run, so that nothing of the run stays in the cell afterwards.
final class RunBoundary: ScopeLink, @unchecked Sendable {
    // @unchecked: immutable after `init`.
    let owner: OwnerKey
    let outside: ScopeLink?
    let placed: Set<UInt64>

    init(chain: ScopeLink?, owner: OwnerKey, outside: ScopeLink?, placed: Set<UInt64>) {
        self.owner = owner
        self.outside = outside
        self.placed = placed
        super.init(localID: 0)
        parent = chain
    }
}
