import Synchronization

/// Context that a ``LocalsSnapshot`` carries besides Locals, reached through functions rather
/// than through a `TaskLocal` of its own: a way to read the value the running code sees, and to
/// run code with a value bound.
///
/// A public `@TaskLocal` needs none of this: pass it to `LocalsSnapshot.carry(_:)`.
/// A library that keeps its task-local private, and offers a getter and a `with…` function
/// instead, is carried through a conformance. Say a library offers `Tenant.current` and
/// `withTenant(_:operation:)`:
///
/// ```swift
/// struct CurrentTenant: CarriedContext {
///     var currentValue: String? { Tenant.current }
///
///     func withValue(_ value: String?, operation: () -> Void) {
///         withTenant(value, operation: operation)
///     }
///
///     func withValue(_ value: String?, isolation: isolated (any Actor)?, operation: () async -> Void) async {
///         await withTenant(value, operation: operation)
///     }
/// }
///
/// LocalsSnapshot.carry(CurrentTenant())     // once, at startup
/// ```
///
/// (swift-log's `Logger.current` and `withLogger` are such a pair; the LocalsLogging module of this
/// package carries them with its `CurrentLogger`.)
///
/// ## Implementing a carried context
///
/// - `currentValue` is read by every ``LocalsSnapshot/capture()``: keep it as cheap as a
///   task-local read.
/// - Both `withValue` forms bind the value for the operation, for the children created inside it
///   (as `TaskLocal.withValue` does), and restore the caller's binding afterwards. The async form
///   runs `operation` on `isolation`, the caller's actor, without a hop.
/// - Equal values of the conforming type stand for the same context: registering an equal one
///   again carries it once. A stateless struct is the usual shape.
/// - An empty snapshot (``LocalsSnapshot/init()``) binds the value that `currentValue` returns on a
///   new thread, outside every task and binding, read once and kept.
public protocol CarriedContext: Hashable, Sendable {
    /// The value carried.
    associatedtype Value: Sendable

    /// The value that the running task or thread sees now.
    var currentValue: Value { get }

    /// Runs `operation` with `value` bound, and restores the caller's binding afterwards.
    ///
    /// - Parameters:
    ///   - value: The value to bind.
    ///   - operation: The code that sees it, and whose children see it.
    func withValue(_ value: Value, operation: () -> Void)

    /// Runs `operation` on `isolation` with `value` bound, and restores the caller's binding
    /// afterwards.
    ///
    /// - Parameters:
    ///   - value: The value to bind.
    ///   - isolation: The caller's actor, which `operation` keeps.
    ///   - operation: The code that sees it, and whose children see it.
    func withValue(_ value: Value, isolation: isolated (any Actor)?, operation: () async -> Void) async
}

extension LocalsSnapshot {
    /// Makes every later snapshot carry `taskLocal` too: ``capture()`` records its value, and
    /// `run` binds that value for the operation and the children created inside it, then restores
    /// the caller's binding.
    ///
    /// Call it once, at startup, for the task-locals that code in callbacks must see (a trace
    /// context, a request's logger, an application's own):
    ///
    /// ```swift
    /// enum Tracing {
    ///     @TaskLocal static var traceID: String?
    /// }
    /// LocalsSnapshot.carry(Tracing.$traceID)
    ///
    /// Tracing.$traceID.withValue("t-1") {
    ///     queue.asyncWithLocals { log(Tracing.traceID) }     // "t-1", on the queue's thread
    /// }
    /// ```
    ///
    /// - A task-local that is unbound where ``capture()`` runs is captured as its default value, and
    ///   bound as such inside `run`, whatever the running code had bound (as Python's
    ///   `copy_context` does).
    /// - An empty snapshot (``init()``) binds it to its default: work run in one, such as a
    ///   background job started from a request, does not see the request's value.
    /// - Registering the same task-local again changes nothing; registering is thread-safe. Only
    ///   snapshots taken after the call carry it. A task-local never registered is not carried.
    /// - The call reads the task-local's default value (unbound) once, on a short-lived thread of
    ///   its own, where nothing is bound: register at startup, not on a hot path.
    ///
    /// Each carried task-local adds a read to every capture and a binding to every `run`.
    ///
    /// - Parameter taskLocal: The task-local, as its projected value (`Type.$name`).
    @inlinable
    public static func carry<Value: Sendable>(_ taskLocal: TaskLocal<Value>) {
        Carriers.register(Carrier(taskLocal: taskLocal))
    }

    /// Makes every later snapshot carry `context` too: ``capture()`` records its current value,
    /// and `run` binds that value for the operation and the children created inside it, then
    /// restores the caller's binding. For context reached through functions (see
    /// ``CarriedContext``); a public `@TaskLocal` goes to `LocalsSnapshot.carry(_:)`.
    ///
    /// ```swift
    /// LocalsSnapshot.carry(CurrentTenant())
    /// ```
    ///
    /// Registering an equal context again changes nothing; registering is thread-safe. Only
    /// snapshots taken after the call carry it. An empty snapshot (``init()``) binds the value the
    /// context has outside every task and binding.
    ///
    /// - Parameter context: The context to carry.
    ///
    /// Inlinable, like the task-local form: what a capture and a run do with the context is made
    /// where its type is concrete, so that neither looks up generic type information at run time.
    @inlinable
    public static func carry<Context: CarriedContext>(_ context: Context) {
        Carriers.register(Carrier(context))
    }
}

/// A public `TaskLocal`, carried as a `CarriedContext`; two are equal when they are one object.
@usableFromInline
struct TaskLocalContext<Value: Sendable>: CarriedContext, CustomStringConvertible {
    @usableFromInline let taskLocal: TaskLocal<Value>

    @inlinable
    init(taskLocal: TaskLocal<Value>) {
        self.taskLocal = taskLocal
    }

    @inlinable
    static func == (lhs: Self, rhs: Self) -> Bool { lhs.taskLocal === rhs.taskLocal }
    @inlinable
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(taskLocal)) }

    @usableFromInline
    var description: String { "TaskLocal<\(Value.self)>" }

    @inlinable
    var currentValue: Value { taskLocal.get() }

    @inlinable
    func withValue(_ value: Value, operation: () -> Void) {
        taskLocal.withValue(value, operation: operation)
    }

    @inlinable
    func withValue(_ value: Value, isolation: isolated (any Actor)?, operation: () async -> Void) async {
        await taskLocal.withValue(value, operation: operation, isolation: isolation)
    }
}

// MARK: - The registry

/// Every registered carried context, in the order registered. Append-only: a context stays
/// registered for the life of the process.
///
/// A capture reads the list with no lock and no reference counting: each registration publishes
/// a new immutable `CarrierList` and keeps the one it replaces alive for good (a capture may be
/// reading it), one small list per registration, and registrations happen once per context.
@usableFromInline
enum Carriers {
    /// The `Unmanaged<CarrierList>` published last, as a bit pattern; 0 before the first
    /// registration.
    private static let published = Atomic<UInt>(0)
    /// Every list ever published (see above); taken only to register.
    private static let lists = Locked.make([CarrierList]())

    @usableFromInline
    static func register(_ carrier: Carrier) {
        // The comparison runs the conformer's `==`: user code, so never under the lock. The list
        // only grows, so its count tells whether it changed between the look and the publishing.
        while true {
            let seen = current?.carriers ?? []
            let id = carrier.id()
            if seen.contains(where: { $0.id() == id }) { return }
            let published = lists.withLock { lists -> Bool in
                guard (lists.last?.carriers.count ?? 0) == seen.count else { return false }
                let list = CarrierList(seen + [carrier])
                lists.append(list)
                Self.published.store(UInt(bitPattern: Unmanaged.passUnretained(list).toOpaque()), ordering: .releasing)
                return true
            }
            if published { return }
        }
    }

    /// The list published last, if any: alive for good (see above).
    private static var current: CarrierList? {
        let bits = published.load(ordering: .acquiring)
        guard let pointer = UnsafeRawPointer(bitPattern: bits) else { return nil }
        return Unmanaged<CarrierList>.fromOpaque(pointer).takeUnretainedValue()
    }

    /// What the running context sees of every registered context, now.
    @inline(__always)
    static func capture() -> CarriedValues {
        let bits = published.load(ordering: .acquiring)
        guard let pointer = UnsafeRawPointer(bitPattern: bits) else { return CarriedValues() }
        return captureSlowly(Unmanaged<CarrierList>.fromOpaque(pointer))
    }

    private static func captureSlowly(_ list: Unmanaged<CarrierList>) -> CarriedValues {
        list._withUnsafeGuaranteedRef { CarriedValues($0) }
    }

    /// Every registered context's value outside every task and binding.
    static func unbound() -> CarriedValues {
        guard let list = current else { return CarriedValues() }
        return CarriedValues(list, unbound: true)
    }
}

/// The carriers registered up to some point (see `Carriers`).
final class CarrierList: Sendable {
    let carriers: [Carrier]

    init(_ carriers: [Carrier]) {
        self.carriers = carriers
    }
}

/// A registered context, with its type hidden: what a capture takes of it, made where the
/// context's type is concrete (`LocalsSnapshot.carry(_:)` is inlinable).
@usableFromInline
struct Carrier: Sendable {
    /// The context, to compare with `==` (it is `Sendable`; `AnyHashable` is not marked so).
    let id: @Sendable () -> AnyHashable
    /// The context's value for the running code.
    let capture: @Sendable () -> CarriedEntry
    /// The context's value outside every task and binding.
    let unbound: @Sendable () -> CarriedEntry

    @inlinable
    init<Context: CarriedContext>(_ context: Context) {
        self.init(
            id: { AnyHashable(context) },
            capture: { Carried(context: context, value: context.currentValue) },
            unbound: Self.unbound(of: context)
        )
    }

    /// A `@TaskLocal`'s carrier: the same as its `TaskLocalContext`'s, except that a capture
    /// reads the value as `ScopeChain.value(of:unbound:)` does, with the copy specialized, and
    /// the value where nothing binds it read once, here, on a thread of its own (the standard
    /// library keeps the default to itself).
    @inlinable
    init<Value: Sendable>(taskLocal: TaskLocal<Value>) {
        let context = TaskLocalContext(taskLocal: taskLocal)
        let unbound = readOutsideEveryBinding { taskLocal.get() }
        self.init(
            id: { AnyHashable(context) },
            capture: { Carried(context: context, value: ScopeChain.value(of: taskLocal, unbound: unbound)) },
            unbound: { Carried(context: context, value: unbound) }
        )
    }

    @usableFromInline
    init(
        id: @escaping @Sendable () -> AnyHashable, capture: @escaping @Sendable () -> CarriedEntry,
        unbound: @escaping @Sendable () -> CarriedEntry
    ) {
        self.id = id
        self.capture = capture
        self.unbound = unbound
    }

    /// `context`'s value as read on a new thread, once, when first needed.
    @usableFromInline
    static func unbound<Context: CarriedContext>(of context: Context) -> @Sendable () -> CarriedEntry {
        let kept = Locked.make(Context.Value?.none)
        return {
            if let value = kept.withLock({ $0 }) {
                return Carried(context: context, value: value)
            }
            let read = onNewThread { context.currentValue }
            // Two first uses at once may both read; they read the same thing, and the first one kept wins.
            let value = kept.withLock { kept in
                if kept == nil { kept = read }
                return kept.unsafelyUnwrapped
            }
            return Carried(context: context, value: value)
        }
    }
}

// MARK: - A thread outside every task and binding

/// `body`'s result on a new thread, where no task runs and no task-local is bound.
@usableFromInline
func readOutsideEveryBinding<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    onNewThread(body)
}

/// Runs `body` on a new thread, which no task runs on and where no task-local is bound, and
/// returns its result once the thread has ended.
private func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
    let result = ThreadResult<T>()
    Platform.runOnNewThread { result.value = body() }
    return result.value.unsafelyUnwrapped
}

private final class ThreadResult<T>: @unchecked Sendable {
    // @unchecked: written by the new thread before it ends, read after the join.
    var value: T?
}
