import _LocalsRuntime
import Synchronization

/// One link of a context's scope chain: an open scope of some `.task` Local (a `ScopeFrame`),
/// holding the next scope out.
///
/// Every `.task` scope of every Local binds one task-local, `ScopeChain.key`, to its frame, whose
/// `parent` is what the key held before: so the running context's scoped values, of every Local,
/// hang from one reference. A child task inherits that reference (task-local bindings are
/// inherited), finds a Local's scope by walking from it on its first touch, and a snapshot
/// captures it without visiting any Local. A frame is linked when it is published, before any
/// other task can see it, and unlinked when it is recycled, when no other task can see it.
///
/// A link holds its parent without a retain while its scope is open: the parent is what the
/// binding outside the scope's own holds, and bindings nest, so the parent outlives the scope.
/// Whoever may hold the link after that (a child task, a snapshot, a cell reading through it)
/// holds a reference to it, so the scope's close finds it shared and makes the link retain its
/// parent (`keepParent`) while the outer binding still holds that: every link reachable from a
/// held one stays alive, and a scope that nobody kept (the common case) costs no reference
/// counting on its parent. Links made to be held from the start (a snapshot's copied values, an
/// `async` run's boundary) retain their parent when linked.
@usableFromInline
class ScopeLink: LockedBox, @unchecked Sendable {
    /// The Local this scope belongs to (see `LocalIDs`).
    @exclusivity(unchecked) @usableFromInline final var localID: UInt64
    /// The next scope out, of any Local; retained only if `ownsParent` (see above).
    @exclusivity(unchecked) @usableFromInline final var parentLink: Unmanaged<ScopeLink>?
    @exclusivity(unchecked) @usableFromInline final var ownsParent = false

    @inlinable
    init(localID: UInt64) {
        self.localID = localID
    }

    /// The next scope out, of any Local.
    @inlinable
    final var parent: ScopeLink? { parentLink?.takeUnretainedValue() }

    /// Links `parent` without retaining it, for a scope being opened in front of it (see above).
    /// The link holds no parent yet.
    @inlinable
    final func link(to parent: Unmanaged<ScopeLink>?) {
        parentLink = parent
    }

    /// Links `parent`, retained, for a link held from the start. The link holds no parent yet.
    @usableFromInline
    final func link(owning parent: ScopeLink?) {
        parentLink = parent.map { Unmanaged.passRetained($0) }
        ownsParent = parentLink != nil
    }

    /// Makes the link retain its parent: its scope closes while some other holder keeps it (see
    /// above). Called by the scope's owner, while the binding outside the scope still holds the
    /// parent.
    @usableFromInline
    final func keepParent() {
        guard !ownsParent, let parentLink else { return }
        _ = parentLink.retain()
        ownsParent = true
    }

    /// Unlinks the parent; returns it if the link retained it, for the caller to release last (a
    /// scope's value may have a deinit).
    @inlinable
    final func unlink() -> ScopeLink? {
        let dropped = parentLink
        parentLink = nil
        guard ownsParent else { return nil }
        ownsParent = false
        return dropped.unsafelyUnwrapped.takeRetainedValue()
    }

    /// Releases the parent, and the chain beyond it as far as nothing else holds it, in a loop: a
    /// snapshot of thousands of values of its own is a chain of as many links, and releasing it
    /// link by link from each one's deinit would nest a call per link (and overflow a small
    /// stack).
    deinit {
        guard ownsParent, var next = parentLink?.takeRetainedValue() else { return }
        // Only this deinit holds `next` when it is uniquely referenced: nobody else can reach it
        // to read its link while it is taken apart. The fence orders what follows after the other
        // holders' last accesses, as `ScopeFrame.recycle` does.
        while isKnownUniquelyReferenced(&next) {
            atomicMemoryFence(ordering: .acquiring)
            guard next.ownsParent, let parent = next.parentLink else { break }
            next.parentLink = nil
            next.ownsParent = false
            next = parent.takeRetainedValue()  // the link just emptied goes, with nothing to release
        }
    }
}

/// The one task-local every `.task` scope binds: the innermost scope of the running context, of
/// any Local. (Also bound by a snapshot's `run`, to a `RunBoundary`.)
@usableFromInline
enum ScopeChain {
    ///
    /// Declared with the class itself rather than an optional, its default a link that is never
    /// bound (`unbound`, read as no scope): a binding's value is destroyed when it goes by the
    /// declared type's witness, and the class's is a release where the generic optional's looked up
    /// the payload's type on every scope.
    @usableFromInline static let key = TaskLocal<ScopeLink>(wrappedValue: unbound)

    /// The key's value where nothing is bound: never bound, never linked; `head` reads it as nil.
    @usableFromInline static let unbound = ScopeLink(localID: 0)

    /// The running context's innermost scope, of any Local: read with the runtime's entry point
    /// for task-local values, as `TaskLocal.get()` reads it, without the generic copy through the
    /// value type's metadata that `get()` makes from outside the standard library (a scope reads
    /// the head on every open). Where the runtime lacks the entry point, `get()`.
    @inlinable
    static var head: ScopeLink? { head(of: key) }

    /// `head`, not retained: for a reference held no longer than the binding that holds it.
    @usableFromInline
    static var unretainedHead: Unmanaged<ScopeLink>? { unretainedHead(of: key) }

    /// `unretainedHead`, with the key passed in (see `head(of:)`).
    @usableFromInline
    @inline(never)
    static func unretainedHead(of key: TaskLocal<ScopeLink>) -> Unmanaged<ScopeLink>? {
        guard locals_runtime_has_task_local_get() else {
            // The binding holds the head: the reference `get()` made can go at once.
            let link = key.get()
            return link === unbound ? nil : Unmanaged.passUnretained(link)
        }
        guard let value = locals_runtime_task_local_get(Unmanaged.passUnretained(key).toOpaque()) else { return nil }
        return value.load(as: Unmanaged<ScopeLink>?.self)
    }

    /// `head`, with the key passed in: a Local keeps it in a stored property, so that a scope reads
    /// a field instead of running the global's one-time initialization check.
    @usableFromInline
    @inline(never)
    static func head(of key: TaskLocal<ScopeLink>) -> ScopeLink? {
        guard locals_runtime_has_task_local_get() else {
            let link = key.get()
            return link === unbound ? nil : link
        }
        guard let value = locals_runtime_task_local_get(Unmanaged.passUnretained(key).toOpaque()) else { return nil }
        return value.load(as: ScopeLink.self)  // bound links are never nil (see `key`)
    }

    /// Whether the runtime exports the task-local push and pop, which bind without a closure to
    /// nest in (tests can force the nesting fallback with `LOCALS_FORCE_FALLBACK=taskLocalPush` in a
    /// debug build).
    @usableFromInline
    static let canBind =
        locals_runtime_has_task_local_push() && !TaskRuntime.namesForcedByEnvironment().contains("taskLocalPush")

    /// Binds `key` (the chain's key) to `link` for the running task or thread, as `key.withValue`
    /// does before its operation, through the same runtime entry point; `SnapshotRun.unbind()`
    /// removes it. Only where `canBind`.
    ///
    /// The binding is declared with the type `ScopeLink` rather than the key's `ScopeLink?`: the
    /// same bits (a link is never bound as nil here), and the runtime destroys it when the
    /// binding goes through the class's own witness, a release, instead of the generic optional's,
    /// which looked up the payload's type on every scope.
    @usableFromInline
    static func bind(_ link: ScopeLink, key: TaskLocal<ScopeLink>) {
        bind(link, keyAddress: Unmanaged.passUnretained(key).toOpaque())
    }

    /// `bind(link, key: key)`, with no reference to the key taken around the call.
    static func bind(_ link: ScopeLink, keyAddress: UnsafeMutableRawPointer = keyAddress) {
        var taken = Unmanaged.passRetained(link).toOpaque()  // the binding's reference
        withUnsafeMutablePointer(to: &taken) { pointer in
            locals_runtime_push_task_local(keyAddress, pointer, linkType)
        }
    }

    /// `key`'s address, which never changes (the key lives as long as the process).
    nonisolated(unsafe) static let keyAddress = Unmanaged.passUnretained(key).toOpaque()

    /// Type metadata is immutable once made: sharing the pointer is safe.
    nonisolated(unsafe) private static let linkType = unsafeBitCast(ScopeLink.self as Any.Type, to: UnsafeRawPointer.self)

    /// `find`, not retained: for a chain some caller holds (a run's, held by its snapshot).
    @inlinable
    static func find(_ localID: UInt64, from head: Unmanaged<ScopeLink>?) -> Unmanaged<ScopeLink>? {
        var link = head
        while let current = link {
            let (id, parent) = current._withUnsafeGuaranteedRef { ($0.localID, $0.parentLink) }
            if id == localID {
                return current
            }
            link = parent
        }
        return nil
    }

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
/// (`outside`).
///
/// An asynchronous run puts every Local of the chain in place when it starts, so that a cell the
/// owner makes again inside the run (after a discard) starts from the chain's scope. A
/// synchronous run (an `ActiveRun`) puts them in place lazily, and every cell the owner makes
/// inside it starts as outside the run, so that nothing of the run stays in the cell afterwards.
class RunBoundary: ScopeLink, @unchecked Sendable {
    // @unchecked: set before the boundary is bound, and not changed while any other context can
    // see it (an `ActiveRun` is its thread's only, and is reused only once no one else holds it).
    @exclusivity(unchecked) final var owner: OwnerKey
    /// Not retained: it is the head the owner's binding held when the run started, which outlasts
    /// the run (bindings nest), and only the owner reads it, only while the run lasts.
    @exclusivity(unchecked) final var outsideLink: Unmanaged<ScopeLink>?
    /// Set by the owner when the run ends (and `outside` dropped): a chain captured inside the run
    /// may keep the boundary, which every walk from then on passes into the captured chain, the
    /// owner's too. Read by the owner only.
    @exclusivity(unchecked) final var hasEnded = false

    init(chain: ScopeLink?, owner: OwnerKey, outside: Unmanaged<ScopeLink>?) {
        self.owner = owner
        self.outsideLink = outside
        super.init(localID: 0)
        link(owning: chain)
    }

    /// What the owner had before the run (see above).
    final var outside: ScopeLink? { outsideLink?.takeUnretainedValue() }

    /// Whether `owner`, walking the chain through this boundary, is inside its own run: only
    /// while the run lasts.
    @inlinable
    final func isRun(of owner: OwnerKey) -> Bool {
        !hasEnded && self.owner == owner
    }

    /// The run is over: nothing but the captured chain stays reachable through this boundary (a
    /// child created inside the run may hold it for as long as it runs).
    final func endRun() {
        hasEnded = true
        outsideLink = nil
    }

    /// Whether the run puts the chain's scopes in place lazily.
    final var isLazy: Bool { self is ActiveRun }
}

/// A synchronous snapshot run on one thread, which is also its boundary in the scope chain: what
/// it captured, and what it has put in place so far.
///
/// The run puts a Local's captured scope in place for the running context lazily, at the
/// context's first access of the Local inside the run: the run stamps the thread's cache, so that
/// slots cached before it are not used, and the access goes to `Storage.enterRunView`. So
/// entering and leaving a run costs the same whatever the number of Locals in scope. Each view is
/// taken away when the run ends, in reverse.
final class ActiveRun: RunBoundary, @unchecked Sendable {
    @exclusivity(unchecked) var stamp: UInt64
    /// The Locals whose view is in place (or was found absent, or was put in place with the run's
    /// first parts, with no cell), and on which cell (held, so that no other cell takes its
    /// address meanwhile): a cell made again inside the run (after a discard) gets the view again.
    ///
    /// The first `viewedCount` entries count; the rest are left from earlier runs (with no cell),
    /// so that a run neither allocates nor destroys entries in a steady state.
    @exclusivity(unchecked) private var viewed: [Viewed] = []
    @exclusivity(unchecked) private var viewedCount = 0
    /// What takes each view away, in the order they went in place: records reused from run to
    /// run (a thread's spare run keeps them), so that a view allocates nothing in a steady state.
    /// Held by this run (retained once, released in `deinit`), and handed out unretained.
    @exclusivity(unchecked) var undos: [Unmanaged<RunUndo>] = []
    @exclusivity(unchecked) var undoCount = 0
    /// The run this one is nested in, on this thread: not retained, as the enclosing run's caller
    /// holds it until after this one ends.
    @exclusivity(unchecked) var previous: Unmanaged<ActiveRun>?
    @exclusivity(unchecked) var previousStamp: UInt64

    private init() {
        stamp = 0
        previousStamp = 0
        super.init(chain: nil, owner: .noKey, outside: nil)
    }

    /// A run of `chain` by `owner` on the thread of `context`: the thread's spare one if it has
    /// one (a run allocates nothing then), else a new one.
    ///
    /// The run links the chain without a retain: the snapshot that runs holds it while the run
    /// lasts, and `recycle` makes the link retain it if something still holds the run then.
    static func make(chain: ScopeLink?, owner: OwnerKey, in context: ThreadContext) -> ActiveRun {
        let run = context.spareRun.take() ?? ActiveRun()
        run.start(chain: chain, owner: owner, in: context)
        return run
    }

    /// Sets the run up (a method, so that the stores need no reference to the run of their own).
    private func start(chain: ScopeLink?, owner: OwnerKey, in context: ThreadContext) {
        stamp = context.nextStamp()
        hasEnded = false
        previous = context.activeRunLink
        previousStamp = context.runStamp
        self.owner = owner
        outsideLink = ScopeChain.unretainedHead
        link(to: chain.map { Unmanaged.passUnretained($0) })
    }

    /// Keeps `run` as its thread's spare once it has ended, if nothing else holds it (a child task
    /// created inside it holds its boundary for as long as it runs).
    static func recycle(_ run: inout ActiveRun?, in context: ThreadContext) {
        // Ordered after whatever another thread did with the run before it let go of it (a child
        // that held the boundary), as `ScopeFrame.recycle` is.
        atomicMemoryFence(ordering: .acquiring)
        guard isKnownUniquelyReferenced(&run) else {
            run.unsafelyUnwrapped.keepParent()  // its holder walks into the chain, after the snapshot goes
            return
        }
        _ = run.unsafelyUnwrapped.unlink()  // never retained (see `make`)
        context.spareRun = run.take()
    }

    /// The cell the view of `local` is in place on; `.some(nil)` where none is needed.
    func viewedCell(of local: UInt64) -> AnyObject?? {
        for index in 0..<viewedCount where viewed[index].local == local {
            return .some(viewed[index].cell)
        }
        return nil
    }

    func setViewed(_ local: UInt64, on cell: AnyObject?) {
        for index in 0..<viewedCount where viewed[index].local == local {
            viewed[index].cell = cell
            return
        }
        if viewedCount < viewed.count {
            viewed[viewedCount] = Viewed(local: local, cell: cell)
        } else {
            viewed.append(Viewed(local: local, cell: cell))
        }
        viewedCount += 1
    }

    struct Viewed {
        var local: UInt64
        var cell: AnyObject?
    }

    /// A record for the next view, reused if an earlier run left one.
    func nextUndo() -> Unmanaged<RunUndo> {
        defer { undoCount += 1 }
        if undoCount < undos.count {
            return undos[undoCount]
        }
        let undo = Unmanaged.passRetained(RunUndo())
        undos.append(undo)
        return undo
    }

    deinit {
        for undo in undos {
            undo.release()
        }
    }

    /// Makes this run the thread's current one.
    func begin(in context: ThreadContext) {
        context.activeRunLink = Unmanaged.passUnretained(self)
        context.runStamp = stamp
    }

    /// Gives the thread back to the run it was in before, and takes away every view, in reverse.
    func end(in context: ThreadContext) {
        context.activeRunLink = previous
        context.runStamp = previousStamp
        previous = nil
        while undoCount > 0 {
            undoCount -= 1
            undos[undoCount]._withUnsafeGuaranteedRef { undo in
                // A record left empty (a view given up, see `Storage.enterRunView`) has nothing to
                // undo. The record's storage moves out here and outlives the call: the storage holds
                // the operations the call runs in.
                guard let operations = undo.operations, let storage = undo.storage.take() else { return }
                operations._withUnsafeGuaranteedRef { $0.leaveView(undo, storage) }
                withExtendedLifetime(storage) {}
            }
        }
        for index in 0..<viewedCount {
            viewed[index].cell = nil  // the cells, and through them their tasks' pins
        }
        viewedCount = 0
        endRun()
    }
}

/// What takes one view of a run away again (see `Storage.enterRunView`): the Local's snapshot
/// operations, which fill it and use it, specialized for the value type. A scope opened on the
/// running context's cell (`cell`, `epoch`), or a redirect of it (`redirect`); `frame` moves out
/// when the view goes, so that it goes back uniquely referenced and is recycled, as when a scope
/// closes.
@usableFromInline
final class RunUndo {
    /// Not retained: the Local's storage (`storage`, retained) holds its operations.
    @exclusivity(unchecked) @usableFromInline var operations: Unmanaged<SnapshotOps>?
    @exclusivity(unchecked) @usableFromInline var storage: AnyObject?
    @exclusivity(unchecked) @usableFromInline var frame: AnyObject?
    @exclusivity(unchecked) @usableFromInline var cell: UnsafeMutableRawPointer?
    @exclusivity(unchecked) @usableFromInline var epoch: UInt = 0
    @exclusivity(unchecked) @usableFromInline var redirect: AnyObject?

    @usableFromInline
    init() {}
}
