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
/// The context that runs the snapshot (its `owner`) sees, of each Local, the captured chain's
/// scope where it has one (the run puts it in place), and otherwise what it had before the run
/// (`outside`); its first touch of a Local inside the run makes the cell as it would have been
/// outside the run, so that nothing of the run stays in the cell afterwards.
final class RunBoundary: ScopeLink, @unchecked Sendable {
    // @unchecked: immutable after `init`.
    let owner: OwnerKey
    let outside: ScopeLink?
    /// Whether the run puts the chain's scopes in place lazily (a synchronous run, see
    /// `ActiveRun`): then every cell the owner makes inside starts as outside the run, and the run
    /// puts its view in place on it; else the owner has every Local of the chain in place from
    /// the start, and a cell it makes again (after a discard) starts from the chain's scope.
    let isLazy: Bool

    init(chain: ScopeLink?, owner: OwnerKey, outside: ScopeLink?, isLazy: Bool) {
        self.owner = owner
        self.outside = outside
        self.isLazy = isLazy
        super.init(localID: 0)
        parent = chain
    }
}

/// A synchronous snapshot run on one thread: which context runs it, what it captured, and what it
/// put in place so far. A run puts a Local's captured scope in place for the running context
/// lazily, at the context's first access of the Local inside the run (its cache slots, stamped
/// with another run, send that access to `Storage.enterRunView`), so that entering and leaving a
/// run costs the same whatever the number of Locals in scope; each view is taken away when the
/// run ends, in reverse.
final class ActiveRun {
    let stamp: UInt64
    let owner: OwnerKey
    let chain: ScopeLink?
    /// The Locals whose view was put in place (or found already there, or found absent), and on
    /// which cell (held, so that no other cell takes its address meanwhile): a cell made again
    /// inside the run (after a discard) gets the view again.
    var viewed: [UInt64: AnyObject?]
    var undos: [() -> Void] = []
    let previous: ActiveRun?
    let previousStamp: UInt64

    init(
        stamp: UInt64, owner: OwnerKey, chain: ScopeLink?, viewed: [UInt64: AnyObject?], in context: ThreadContext
    ) {
        self.stamp = stamp
        self.owner = owner
        self.chain = chain
        self.viewed = viewed
        previous = context.activeRun
        previousStamp = context.runStamp
    }

    /// Makes this run the thread's current one.
    func begin(in context: ThreadContext) {
        context.activeRun = self
        context.runStamp = stamp
    }

    /// Gives the thread back to the run it was in before, and takes away every view, in reverse.
    func end(in context: ThreadContext) {
        context.activeRun = previous
        context.runStamp = previousStamp
        while let undo = undos.popLast() {
            undo()
        }
    }
}
