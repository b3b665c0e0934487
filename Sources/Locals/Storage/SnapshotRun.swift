public import _LocalsRuntime  // public: `bind` is inlined into the Locals' snapshot operations

/// A `LocalsSnapshot.run`, in a loop rather than one nested call per part.
///
/// The parts put in place at the start (all of them for an asynchronous run; for a synchronous
/// one only what the captured chain cannot carry) go in turn onto the running context's cells,
/// with no task-local bound yet, so that a first touch here makes the cell the running context
/// would have had anyway, with what undoes each kept in a slot of one temporary buffer (on the
/// stack for small synchronous runs). Then the captured scope chain is bound behind a
/// `RunBoundary`, and each scope opened for the run is published in front of it, through the
/// runtime entry points that `TaskLocal.withValue` itself uses; then the operation runs; then
/// everything is unbound and taken away, in reverse. A run that nested a closure per part needed
/// a stack frame per Local (a few thousand overflowed a thread's stack).
///
/// Where the runtime lacks those entry points, the bindings nest.
@usableFromInline
enum SnapshotRun {
    /// The bytes a part's undo takes (checked by each part when it opens).
    @inlinable static var slotSize: Int { 48 }
    /// A slot: the part's operations, unretained (the caller holds them), then its undo.
    static let slotStride = 8 + slotSize

    /// Whether the runtime exports the task-local push and pop (see `ScopeChain.canBind`).
    static var canBind: Bool { ScopeChain.canBind }

    /// A synchronous run: `parts` (what the chain cannot carry: `.overlay` children's writes,
    /// `.thread` values, sessions) are put in place now; each Local of `chain` lazily, at the
    /// running context's first access inside the run (see `ActiveRun`).
    static func run(chain: ScopeLink?, _ parts: SnapshotParts, _ body: () -> Void) {
        if parts.isEmpty {
            let context = ThreadContext.currentUnmanaged
            if context._withUnsafeGuaranteedRef({ $0.canBind }) {
                return run(chain: chain, in: context, body)
            }
        }
        withUnsafeTemporaryAllocation(byteCount: max(1, parts.count) * slotStride, alignment: 8) { buffer in
            let base = buffer.baseAddress.unsafelyUnwrapped
            let opened = open(parts, base)
            let context = ThreadContext.current
            // Held only here (and by the binding while it lasts), so that it can be recycled.
            var run: ActiveRun? = ActiveRun.make(chain: chain, owner: runningOwner(), in: context)
            for part in parts {
                // In place now, on whatever cell the running context has (again on a cell made
                // inside the run, if that one is removed).
                run.unsafelyUnwrapped.setViewed(part.ops.localID, on: nil, part: part.data)
            }
            if canBind {
                let bound = publish(run.unsafelyUnwrapped, opened, base)
                run.unsafelyUnwrapped.begin(in: context)
                body()
                run.unsafelyUnwrapped.takeViewsAway()
                close(opened, base, unbinding: bound)
            } else {
                ScopeChain.key.withValue(run.unsafelyUnwrapped) {
                    nested(opened, base, from: 0) {
                        run.unsafelyUnwrapped.begin(in: context)
                        body()
                        run.unsafelyUnwrapped.takeViewsAway()
                    }
                }
                close(opened, base, unbinding: 0)
            }
            // Only now: taking the parts away runs deinits too (see `ActiveRun.end`).
            run.unsafelyUnwrapped.giveBack(context)
            ActiveRun.recycle(&run, in: context)
        }
    }

    /// A synchronous run with nothing to put in place at the start (a snapshot of scopes and of
    /// values of the context's own, the common case), where the runtime binds without a closure:
    /// the steps above with nothing retained that a caller holds already.
    private static func run(chain: ScopeLink?, in context: Unmanaged<ThreadContext>, _ body: () -> Void) {
        let owner = runningOwner()
        context._withUnsafeGuaranteedRef { context in
            // Held only here (and by the binding while it lasts), so that it can be recycled.
            // Unmanaged: the one reference is this function's, moved out again for `recycle`.
            let run = Unmanaged.passRetained(ActiveRun.make(chain: chain, owner: owner, in: context))
            run._withUnsafeGuaranteedRef { run in
                ScopeChain.bind(run, keyAddress: context.chainKeyAddress, linkType: context.chainLinkType)
                run.begin(in: context)
            }
            body()
            run._withUnsafeGuaranteedRef { $0.end(in: context) }
            unbind()
            var held: ActiveRun? = run.takeRetainedValue()
            ActiveRun.recycle(&held, in: context)
        }
    }

    /// The running context, as a `.task` Local keys it: the task, or the thread outside tasks.
    private static func runningOwner() -> OwnerKey {
        TaskIdentity.current ?? OwnerKey(ThreadContext.current.id)
    }

    static func run(
        chain: ScopeLink?, _ parts: [SnapshotPart], isolation: isolated (any Actor)?, _ body: () async -> Void
    ) async {
        let base = UnsafeMutableRawPointer.allocate(byteCount: max(1, parts.count) * slotStride, alignment: 8)
        defer { base.deallocate() }
        let opened = open(parts, base)
        let boundary = RunBoundary(chain: chain, owner: runningOwner(), outside: ScopeChain.unretainedHead)
        defer { boundary.endRun() }
        if canBind {
            let bound = publish(boundary, opened, base)
            await body()
            close(opened, base, unbinding: bound)
        } else {
            await ScopeChain.key.withValue(
                boundary,
                operation: {
                    await nested(opened, base, from: 0, isolation: isolation, body)
                    },
                isolation: isolation
            )
            close(opened, base, unbinding: 0)
        }
    }

    /// Puts each part in place; returns how many slots it filled (a part whose Local is gone
    /// fills none).
    private static func open(_ parts: some Sequence<SnapshotPart>, _ base: UnsafeMutableRawPointer) -> Int {
        var opened = 0
        for part in parts {
            let slot = base + opened * slotStride
            if part.open(at: slot + 8) {
                slot.initializeMemory(as: Unmanaged<SnapshotOps>.self, to: .passUnretained(part.ops))
                opened += 1
            }
        }
        return opened
    }

    /// Binds the chain, then publishes each part in front of it; returns how many bindings it made
    /// after the chain's.
    private static func publish(_ boundary: RunBoundary, _ opened: Int, _ base: UnsafeMutableRawPointer) -> Int {
        bindChain(boundary)
        var bound = 0
        for index in 0..<opened {
            let slot = base + index * slotStride
            if slot.load(as: Unmanaged<SnapshotOps>.self)._withUnsafeGuaranteedRef({ $0.publish(slot + 8) }) {
                bound += 1
            }
        }
        return bound
    }

    /// Takes every part away, in reverse; with the runtime's pop, unbinds the parts' bindings and
    /// then the chain's.
    private static func close(_ opened: Int, _ base: UnsafeMutableRawPointer, unbinding bound: Int) {
        for index in (0..<opened).reversed() {
            let slot = base + index * slotStride
            slot.load(as: Unmanaged<SnapshotOps>.self)._withUnsafeGuaranteedRef { $0.close(slot + 8, canBind) }
        }
        if canBind {
            unbind()
        }
    }

    private static func nested(_ opened: Int, _ base: UnsafeMutableRawPointer, from index: Int, _ body: () -> Void) {
        guard index < opened else { return body() }
        let slot = base + index * slotStride
        slot.load(as: Unmanaged<SnapshotOps>.self)._withUnsafeGuaranteedRef { ops in
            ops.withPublished(slot + 8) { nested(opened, base, from: index + 1, body) }
        }
    }

    private static func nested(
        _ opened: Int, _ base: UnsafeMutableRawPointer, from index: Int, isolation: isolated (any Actor)?,
        _ body: () async -> Void
    ) async {
        guard index < opened else { return await body() }
        let slot = base + index * slotStride
        let ops = slot.load(as: Unmanaged<SnapshotOps>.self).takeUnretainedValue()
        await ops.withPublishedAsync(slot + 8, isolation) { await nested(opened, base, from: index + 1, isolation: isolation, body) }
    }

    /// Binds `key` to `value` for the running task (or thread), as `key.withValue(value)` does
    /// before its operation; `unbind()` removes the innermost binding.
    @inlinable
    static func bind<T: AnyObject>(_ key: TaskLocal<T?>, to value: T?) {
        // The runtime takes the value over: a retained reference, as an optional's bit pattern.
        var taken: UnsafeMutableRawPointer? = value.map { Unmanaged.passRetained($0).toOpaque() }
        withUnsafeMutablePointer(to: &taken) { pointer in
            locals_runtime_push_task_local(
                Unmanaged.passUnretained(key).toOpaque(), pointer,
                unsafeBitCast(T?.self as Any.Type, to: UnsafeRawPointer.self)
            )
        }
    }

    static func bindChain(_ link: ScopeLink) {
        ScopeChain.bind(link, key: ScopeChain.key)
    }

    @inlinable
    static func unbind() {
        locals_runtime_pop_task_local()
    }
}
