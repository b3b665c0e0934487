/// What every ``Local`` holds for the running task or thread, taken now, to be put back later on
/// whatever task or thread runs code for it: a callback, an event loop, a queue.
///
/// Code that leaves the task (an `EventLoopFuture` callback, a `DispatchQueue` block, a completion
/// handler, a C callback) loses every value, as it does with `@TaskLocal`; and outside any task a
/// `.task` Local keys values by the thread, which unrelated work shares. A snapshot carries them
/// across, like Python's `contextvars.copy_context().run(...)`:
///
/// ```swift
/// let snapshot = LocalsSnapshot.capture()
/// queue.async {
///     snapshot.run { log("done") }    // reads the request's values, on the queue's thread
/// }
/// ```
///
/// What `capture()` takes from each Local, and what `run` gives back:
/// - A scope the context is in: inside `run`, it reads as a child task created at the capture
///   point would, by the scope's policy (see ``Inheritance``): a copy of the scope's value under
///   `.copy` (taken at the run's first access of the Local; when it starts, for an `async` `run`),
///   the scope's value itself under `.shared`, reading through to its live value under
///   `.overlay`, the initial value under `.fresh`. An `.overlay` child's own writes come along.
/// - The context's own value, where it wrote one outside a scope (or a `.copy` child's copy of its
///   scope's value): a copy. A value it only read is not taken.
/// - A `.thread` Local: a copy of the value the capturing thread wrote. A custom discriminator's
///   session: the session itself, which is the current one inside `run` (and in children created
///   inside `run`, for as long as they run) whatever the discriminator says. If the session was
///   discarded since, `run` starts it over from the initializer under its own key, as any
///   context of that session would: it never falls through to the running context's session.
///   A discriminator that declares ``ValueStorage/perCarriedKey`` is not asked: the snapshot takes
///   nothing of its Locals, and inside `run` its session is the one its key names, which the
///   carried task-local it is computed from gives (code inside `run` that binds that task-local
///   again changes it, as outside).
/// - A `.task` Local the context holds nothing of (no scope, no value it wrote): inside a
///   synchronous `run`, its initial value, as for a child created at the capture point; inside an
///   `async` `run`, whatever the running task has. (`.thread` Locals and sessions it holds nothing
///   of are the running thread's and the current key's.) A Local released before `run` is skipped, and a
///   snapshot never keeps a Local alive. It does keep the scopes it took (and their values)
///   alive, as a child task would.
///
/// Inside `run`, writes are the running code's own (or, under `.shared` and for sessions, go to
/// the shared value), and are discarded when `run` returns, as a scope's are; a snapshot taken
/// inside `run` carries them. Children created inside `run` inherit from the snapshot (and,
/// inside an `async` `run`, the run's own writes to `.copy` and `.fresh` values). `run` nests and restores like a scope, on any task or
/// thread, from any number of threads at once.
///
/// An empty snapshot, `LocalsSnapshot()`, runs work as outside every scope: a synchronous `run`
/// shows no `.task` Local of the caller, and children created inside any `run` inherit nothing. Start
/// background work from a request that way, so that it neither keeps nor sees the request's
/// values:
///
/// ```swift
/// LocalsSnapshot().run { Task { await reindex() } }   // the request's values stay behind
/// ```
///
/// A snapshot also carries the `@TaskLocal`s (and ``CarriedContext``s) registered with
/// `LocalsSnapshot.carry(_:)`: `capture()` records their values and `run` binds them.
///
/// A capture costs one reference to the context's scopes (of every Local at once) plus a copy of
/// each value the context wrote outside a scope; a synchronous `run` costs the same however many
/// Locals are in scope, and puts each in place when the operation first touches it. An `async`
/// `run` puts every captured Local in place when it starts. See <doc:CallbacksEventLoopsAndQueues>.
public struct LocalsSnapshot: Sendable, CustomDebugStringConvertible {
    /// The running context's scopes, of every Local, by one reference (see `ScopeLink`); nil for
    /// none.
    let chain: ScopeLink?
    /// What the context held that the chain cannot carry: `.overlay` children's own writes,
    /// `.thread` values, sessions. (Its own values are frames in front of `chain`.)
    let parts: SnapshotParts
    /// The values of the registered carried task-locals and contexts.
    let carried: CarriedValues

    /// A snapshot that holds nothing of any Local: `run` runs work as outside every scope (see
    /// above).
    ///
    /// Carried task-locals (see `LocalsSnapshot.carry(_:)`) are bound to their default
    /// values inside `run`: work run in an empty snapshot, such as a background job started from a
    /// request, does not continue the request's trace context or use its logger.
    public init() {
        chain = nil
        parts = SnapshotParts()
        carried = Carriers.unbound()
    }

    init(chain: ScopeLink?, parts: SnapshotParts, carried: CarriedValues = CarriedValues()) {
        self.chain = chain
        self.parts = parts
        self.carried = carried
    }

    /// Takes what every live ``Local`` holds for the running task or thread, now, and the value of
    /// every carried task-local.
    public static func capture() -> LocalsSnapshot {
        let (chain, parts) = LiveLocals.capture()
        return LocalsSnapshot(chain: chain, parts: parts, carried: Carriers.capture())
    }

    /// Every part the snapshot puts in place: the context's own parts, then the innermost scope
    /// of each other Local in the captured chain whose Local is still alive.
    func allParts() -> [SnapshotPart] {
        guard chain != nil else { return Array(parts) }
        var seen = Set(parts.map(\.ops.localID))
        var scopes: [ScopeLink] = []
        var link = chain
        while let current = link {
            if seen.insert(current.localID).inserted {
                scopes.append(current)
            }
            link = current.parent
        }
        let ops = LiveLocals.ops(of: scopes.map(\.localID))
        var all = Array(parts)
        for (scope, ops) in zip(scopes, ops) {
            if let ops {
                all.append(SnapshotPart(data: ops.scopePart(scope), ops: ops))
            }
        }
        return all
    }

    /// How many Locals the snapshot holds something of (carried task-locals, and so the Locals of
    /// ``ValueStorage/perCarriedKey`` discriminators, aside).
    public var count: Int { allParts().count }

    /// Whether the snapshot holds nothing of any Local (carried task-locals aside).
    public var isEmpty: Bool { allParts().isEmpty }

    /// Runs `operation` with every captured Local's value in place, then puts the running context's
    /// own back: on return, on a thrown error (rethrown unchanged) and on cancellation.
    ///
    /// ```swift
    /// completion = { result in snapshot.run { handle(result) } }
    /// ```
    ///
    /// Inlinable, so that the result's type is concrete where `run` is called: unspecialized, the
    /// result's generic type metadata would be looked up on every call, which cost more than the
    /// run itself.
    @inlinable
    public func run<R, E: Error>(_ operation: () throws(E) -> R) throws(E) -> R {
        var result: Result<R, E>?
        run { result = Result { () throws(E) -> R in try operation() } }
        return try result.unsafelyUnwrapped.get()
    }

    /// `run`'s work, for a body that returns nothing and cannot throw.
    @usableFromInline
    func run(_ body: () -> Void) {
        if carried.isEmpty {
            SnapshotRun.run(chain: chain, parts, body)
        } else {
            carried.run { SnapshotRun.run(chain: chain, parts, body) }
        }
    }

    /// Runs `operation` with every captured Local's value in place, then puts the running context's
    /// own back. Keeps the caller's actor isolation: `operation` runs where the call was made.
    ///
    /// ```swift
    /// try await snapshot.run { try await save(order) }
    /// ```
    public func run<R, E: Error>(
        isolation: isolated (any Actor)? = #isolation,
        _ operation: () async throws(E) -> R
    ) async throws(E) -> R {
        var result: Result<R, E>?
        let parts = allParts()
        await carried.run(isolation: isolation) {
            await SnapshotRun.run(chain: chain, parts, isolation: isolation) {
                do throws(E) {
                    result = .success(try await operation())
                } catch {
                    result = .failure(error)
                }
            }
        }
        return try result.unsafelyUnwrapped.get()
    }

    /// Wraps `body` so that it runs under this snapshot, wherever and whenever it is called.
    ///
    /// ```swift
    /// client.fetch(url, completion: snapshot.bind { result in log("fetched \(result)") })
    /// ```
    public func bind<each Argument, Result>(
        _ body: @escaping @Sendable (repeat each Argument) -> Result
    ) -> @Sendable (repeat each Argument) -> Result {
        { (argument: repeat each Argument) in run { body(repeat each argument) } }
    }

    /// Wraps `body` so that it runs under a snapshot taken now: for completion handlers and
    /// callbacks that run on some other thread later.
    ///
    /// ```swift
    /// client.fetch(url, completion: LocalsSnapshot.bind { result in log("fetched \(result)") })
    /// ```
    public static func bind<each Argument, Result>(
        _ body: @escaping @Sendable (repeat each Argument) -> Result
    ) -> @Sendable (repeat each Argument) -> Result {
        capture().bind(body)
    }

    /// Each captured Local (its name, if it was given one), its value now, and where it came from:
    /// the file and line of the scope it was in, or the context's own value; then each carried
    /// task-local and its value.
    ///
    /// ```
    /// LocalsSnapshot of 2 Locals:
    ///   Local<RequestState>("request", TaskDiscriminator, inheritance: .copy) = RequestState(...) (a .copy scope opened at App/Middleware.swift:42)
    ///   Local<Cart>(SessionDiscriminator, inheritance: .copy) = Cart(items: [...]) (the session s-42)
    ///   TaskLocal<Optional<String>> = Optional("t-1") (carried)
    /// ```
    public var debugDescription: String {
        let parts = allParts()
        let lines = (parts.map { $0.listing() } + carried.listings).map { "  " + $0 }
        let count = parts.count == 1 ? "1 Local" : "\(parts.count) Locals"
        return (["LocalsSnapshot of \(count):"] + lines).joined(separator: "\n")
    }
}
