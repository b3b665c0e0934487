import Synchronization

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
    /// Counts the walks through the boundary (see `noteWalked`).
    final let walks = Atomic<Int>(0)

    init(chain: ScopeLink?, owner: OwnerKey, outside: Unmanaged<ScopeLink>?) {
        self.owner = owner
        self.outsideLink = outside
        super.init(localID: 0)
        link(owning: chain)
    }

    /// What the owner had before the run (see above).
    final var outside: ScopeLink? { outsideLink?.takeUnretainedValue() }

    /// Whether `owner`, walking the chain through this boundary, is inside its own run: only
    /// while the run lasts. The owner is compared first: it is set before the boundary is bound,
    /// while `hasEnded` is written by the run's owner when the run ends, and only the owner may
    /// read it (another context walking through, a child created inside, never gets that far).
    final func isRun(of owner: OwnerKey) -> Bool {
        self.owner == owner && !hasEnded
    }

    /// The run is over: nothing but the captured chain stays reachable through this boundary (a
    /// child created inside the run may hold it for as long as it runs).
    final func endRun() {
        hasEnded = true
        outsideLink = nil
    }

    /// Called by a context that walked through the boundary once it has read all it reads of it.
    /// The boundary of a synchronous run is reused once nobody holds it, which the reference count
    /// orders after every holder's reads; this makes that order visible to Thread Sanitizer too,
    /// through `ActiveRun.recycle`'s acquiring load. (One atomic add, at a first touch.)
    final func noteWalked() {
        walks.add(1, ordering: .releasing)
    }

    /// Whether the run puts the chain's scopes in place lazily.
    final var isLazy: Bool { self is ActiveRun }

    /// Whether a synchronous run is taking its views away: its owner sees what it has outside.
    final var isEndingRun: Bool { (self as? ActiveRun)?.isEnding ?? false }
}

/// A synchronous snapshot run on one thread, which is also its boundary in the scope chain: what
/// it captured, and what it has put in place so far.
///
/// The run puts a Local's captured scope in place for the running context lazily, at the
/// context's first access of the Local inside the run: the run stamps the thread's cache, so that
/// slots cached before it are not used, and the access goes to `CellStorage.enterRunView`. So
/// entering and leaving a run costs the same whatever the number of Locals in scope. Each view is
/// taken away when the run ends, in reverse.
final class ActiveRun: RunBoundary, @unchecked Sendable {
    @exclusivity(unchecked) var stamp: UInt64
    /// Set while `end` takes the views away: an access then puts no new view in place.
    @exclusivity(unchecked) private(set) var isEnding = false
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
    /// How many reads this run has served from a captured scope in place (see `scopeToPeek`).
    @exclusivity(unchecked) private var peeks = 0
    /// The cells those reads go through, one per Local (each a `Cell` of that Local's value
    /// type, pointed at the scope it reads at each read), with the stamp of the run that last
    /// used each: kept from run to run on the thread, so that a callback reading the same Locals
    /// allocates nothing. At most `maxPeeks`, and one that a run used stays until it ends.
    @exclusivity(unchecked) private var peekCells: [(local: UInt64, cell: AnyObject, stamp: UInt64)] = []
    /// Past this many, a read puts the view in place as every other access does: a callback that
    /// reads Locals many times pays for each view once, rather than for a walk at every read.
    static var maxPeeks: Int { 8 }

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
        peeks = 0
        previous = context.activeRunLink
        previousStamp = context.runStamp
        self.owner = owner
        outsideLink = ScopeChain.unretainedHead(of: context.chainKey)
        link(to: chain.map { Unmanaged.passUnretained($0) })
    }

    /// Keeps `run` as its thread's spare once it has ended, if nothing else holds it (a child task
    /// created inside it holds its boundary for as long as it runs).
    static func recycle(_ run: inout ActiveRun?, in context: ThreadContext) {
        guard isKnownUniquelyReferenced(&run) else {
            run.unsafelyUnwrapped.keepParent()  // its holder walks into the chain, after the snapshot goes
            return
        }
        // Ordered after whatever another thread did with the run before it let go of it (a child
        // that held the boundary), as `ScopeFrame.recycle` is; and, for Thread Sanitizer, which
        // does not see that ordering (it comes from the reference count), after every walk
        // through the boundary (see `noteWalked`).
        atomicMemoryFence(ordering: .acquiring)
        _ = run.unsafelyUnwrapped.walks.load(ordering: .acquiring)
        _ = run.unsafelyUnwrapped.unlink()  // never retained (see `make`)
        context.spareRun = run.take()
    }

    /// What the run has put in place of `local`: nothing yet (nil); else whether it is on `cell`,
    /// whether it is on some other cell, and the part it put in place at its start, if any.
    /// (Nothing retained: the run holds them.)
    func viewed(of local: UInt64, on cell: AnyObject) -> (onCell: Bool, onOther: Bool, part: Unmanaged<AnyObject>?)? {
        for index in 0..<viewedCount where viewed[index].local == local {
            let onCell = viewed[index].cell === cell
            let onOther = !onCell && viewed[index].cell != nil
            return (onCell, onOther, viewed[index].part.map { Unmanaged.passUnretained($0) })
        }
        return nil
    }

    /// What a read of `local` by the running context finds in this run, without a view.
    enum Peek {
        /// The captured scope to read in place (see `CellStorage.scopeToPeek`), the same one
        /// the view would be made from, with the cell kept for such reads of `local`, if any.
        case scope(Unmanaged<ScopeLink>, kept: Unmanaged<AnyObject>?)
        /// Nothing in place: the read goes to the running context's cell (a view of this run's,
        /// or one it puts in place now).
        case cell
        /// The run is ending and has nothing of `local`: the read sees what the context has
        /// outside the run, in the run this one is nested in, if any.
        case outside
    }

    /// What a read of `local` finds (see `Peek`): the captured scope only while the run has put
    /// nothing of `local` in place (no view, no part, no scope the context opened inside the run,
    /// each of which the run notes in `viewed`), for the first `maxPeeks` reads. While the run
    /// ends, it puts no new view in place and reads nothing new in place: a Local it read in place
    /// still is (as a view not yet taken away would be), any other reads as outside the run.
    func peek(_ local: UInt64) -> Peek {
        for index in 0..<viewedCount where viewed[index].local == local {
            return .cell
        }
        let kept = peekCells.firstIndex { $0.local == local }
        if isEnding {
            guard let kept, peekCells[kept].stamp == stamp,
                let scope = ScopeChain.find(local, from: parentLink)
            else { return .outside }
            return .scope(scope, kept: Unmanaged.passUnretained(peekCells[kept].cell))
        }
        guard peeks < Self.maxPeeks, let scope = ScopeChain.find(local, from: parentLink) else { return .cell }
        peeks += 1
        guard let kept else { return .scope(scope, kept: nil) }
        peekCells[kept].stamp = stamp
        return .scope(scope, kept: Unmanaged.passUnretained(peekCells[kept].cell))
    }

    /// Keeps `cell` for reads of `local` in place, in place of one no read of this run used if
    /// there are `maxPeeks` already (there is one: a run reads in place at most that often).
    func keep(_ cell: AnyObject, of local: UInt64) {
        let entry = (local: local, cell: cell, stamp: stamp)
        guard peekCells.count == Self.maxPeeks else {
            peekCells.append(entry)
            return
        }
        let index = peekCells.firstIndex { $0.stamp != stamp }
        peekCells[index.unsafelyUnwrapped] = entry
    }

    /// Notes that `local`'s view is in place on `cell`; with `part`, that the part is in place
    /// (on whatever cell the running context had when the run started, if `cell` is nil).
    func setViewed(_ local: UInt64, on cell: AnyObject?, part: AnyObject? = nil) {
        for index in 0..<viewedCount where viewed[index].local == local {
            viewed[index].cell = cell
            return
        }
        if viewedCount < viewed.count {
            viewed[viewedCount] = Viewed(local: local, cell: cell, part: part)
        } else {
            viewed.append(Viewed(local: local, cell: cell, part: part))
        }
        viewedCount += 1
    }

    /// Forgets the view of `local` (one given up: the next access puts it in place).
    func forgetViewed(_ local: UInt64) {
        for index in 0..<viewedCount where viewed[index].local == local {
            viewedCount -= 1
            viewed.swapAt(index, viewedCount)
            viewed[viewedCount].cell = nil
            viewed[viewedCount].part = nil
            return
        }
    }

    struct Viewed {
        var local: UInt64
        var cell: AnyObject?
        /// The part the run put in place at its start, which goes again on a cell the running
        /// context makes inside the run (after its cell was removed).
        var part: AnyObject?
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

    /// Takes away every view, in reverse, then gives the thread back to the run it was in before.
    ///
    /// Taking a view away releases values (a scope's value, a replaced one), whose deinit is user
    /// code that may touch Locals. Until every view is gone the thread stays in this run, which
    /// puts no new view in place meanwhile (`isEnding`): such a touch sees a view not yet taken
    /// away, or else what the context has outside the run. Given back first, the thread would be
    /// in the enclosing run, whose view of a Local would go on top of this run's view still in
    /// place, and be pointed under it when this one went.
    func end(in context: ThreadContext) {
        takeViewsAway()
        giveBack(context)
    }

    /// The first half of `end`: every view goes, in reverse. A run that put parts in place at its
    /// start takes them away after this and before `giveBack`, for the same reason.
    func takeViewsAway() {
        isEnding = true
        while undoCount > 0 {
            undoCount -= 1
            undos[undoCount]._withUnsafeGuaranteedRef { undo in
                // A record left empty (a view given up, see `CellStorage.enterRunView`) has nothing to
                // undo. The record's storage moves out here and outlives the call: the storage holds
                // the operations the call runs in.
                guard let operations = undo.operations, let storage = undo.storage.take() else { return }
                operations._withUnsafeGuaranteedRef { $0.leaveView(undo, storage) }
                withExtendedLifetime(storage) {}
            }
        }
    }

    /// The second half of `end`: the thread goes back to the run it was in before.
    func giveBack(_ context: ThreadContext) {
        // Released while the thread is still in this (ending) run: a deinit sees what the
        // context has outside it.
        for index in 0..<viewedCount {
            viewed[index].cell = nil  // the cells, and through them their tasks' pins
            viewed[index].part = nil
        }
        viewedCount = 0
        context.activeRunLink = previous
        context.runStamp = previousStamp
        previous = nil
        isEnding = false
        endRun()
    }
}

/// What takes one view of a run away again (see `CellStorage.enterRunView`): the Local's snapshot
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
    /// Whether the cell was listed (see `Cell.isListed`) before a scope view went in place.
    @exclusivity(unchecked) @usableFromInline var wasListed = false

    init() {}
}
