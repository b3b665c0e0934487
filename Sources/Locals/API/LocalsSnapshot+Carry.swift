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
    ///
    /// Each carried task-local adds a read to every capture and a binding to every `run`.
    ///
    /// - Parameter taskLocal: The task-local, as its projected value (`Type.$name`).
    public static func carry<Value: Sendable>(_ taskLocal: TaskLocal<Value>) {
        Carriers.register(TaskLocalContext(taskLocal: taskLocal))
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
    public static func carry(_ context: some CarriedContext) {
        Carriers.register(context)
    }
}

/// A public `TaskLocal`, carried as a `CarriedContext`; two are equal when they are one object.
struct TaskLocalContext<Value: Sendable>: CarriedContext, CustomStringConvertible {
    let taskLocal: TaskLocal<Value>

    static func == (lhs: Self, rhs: Self) -> Bool { lhs.taskLocal === rhs.taskLocal }
    func hash(into hasher: inout Hasher) { hasher.combine(ObjectIdentifier(taskLocal)) }

    var description: String { "TaskLocal<\(Value.self)>" }

    var currentValue: Value { taskLocal.get() }

    func withValue(_ value: Value, operation: () -> Void) {
        taskLocal.withValue(value, operation: operation)
    }

    func withValue(_ value: Value, isolation: isolated (any Actor)?, operation: () async -> Void) async {
        await taskLocal.withValue(value, operation: operation, isolation: isolation)
    }
}

// MARK: - The registry

/// Every registered carried context, in the order registered. Append-only: a context stays
/// registered for the life of the process.
enum Carriers {
    private static let registered = Locked.make([any ErasedCarrier]())
    /// How many are registered: lets a capture with none registered skip the lock.
    private static let count = Atomic<Int>(0)

    static func register<Context: CarriedContext>(_ context: Context) {
        let id = AnyHashable(context)
        let carrier = Carrier(context: context)
        // The comparison runs the conformer's `==`: user code, so never under the lock. The list
        // only grows, so its count tells whether it changed between the look and the append.
        while true {
            let seen = registered.withLock { $0 }
            if seen.contains(where: { $0.id == id }) { return }
            let appended = registered.withLock { list -> Bool in
                guard list.count == seen.count else { return false }
                list.append(carrier)
                count.store(list.count, ordering: .releasing)
                return true
            }
            if appended { return }
        }
    }

    /// What the running context sees of every registered context, now.
    @inline(__always)
    static func capture() -> CarriedValues {
        guard count.load(ordering: .acquiring) > 0 else { return CarriedValues() }
        return captureSlowly()
    }

    private static func captureSlowly() -> CarriedValues {
        let carriers = registered.withLock { $0 }
        return CarriedValues(entries: carriers.map { $0.capture() })
    }

    /// Every registered context's value outside every task and binding.
    static func unbound() -> CarriedValues {
        guard count.load(ordering: .acquiring) > 0 else { return CarriedValues() }
        let carriers = registered.withLock { $0 }
        return CarriedValues(entries: carriers.map { $0.unbound() })
    }
}

/// The values of the carried contexts that a snapshot took, bound by `run`.
struct CarriedValues: Sendable {
    private let entries: [any CarriedEntry]

    init(entries: [any CarriedEntry] = []) {
        self.entries = entries
    }

    var isEmpty: Bool { entries.isEmpty }

    /// One line per context, for a snapshot's debug description.
    var listings: [String] { entries.map(\.listing) }

    /// Runs `body` with every value bound.
    func run(_ body: () -> Void) {
        run(from: 0, body)
    }

    private func run(from index: Int, _ body: () -> Void) {
        guard index < entries.count else { return body() }
        entries[index].enter { run(from: index + 1, body) }
    }

    /// Runs `body` on `isolation` with every value bound.
    func run(isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        await run(from: 0, isolation: isolation, body)
    }

    private func run(from index: Int, isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        guard index < entries.count else { return await body() }
        await entries[index].enter(isolation) { await run(from: index + 1, isolation: isolation, body) }
    }
}

/// A registered context, with its type hidden.
protocol ErasedCarrier: Sendable {
    var id: AnyHashable { get }
    /// The context's value for the running code.
    func capture() -> any CarriedEntry
    /// The context's value outside every task and binding.
    func unbound() -> any CarriedEntry
}

/// One context's value in a snapshot, with its type hidden.
protocol CarriedEntry: Sendable {
    var listing: String { get }
    func enter(_ body: () -> Void)
    func enter(_ isolation: isolated (any Actor)?, _ body: () async -> Void) async
}

struct Carrier<Context: CarriedContext>: ErasedCarrier {
    let context: Context
    /// `currentValue` as read on a new thread, once, when first needed.
    private let unboundValue = Locked.make(Context.Value?.none)

    init(context: Context) {
        self.context = context
    }

    var id: AnyHashable { AnyHashable(context) }

    func capture() -> any CarriedEntry {
        Carried(context: context, value: context.currentValue)
    }

    func unbound() -> any CarriedEntry {
        if let value = unboundValue.withLock({ $0 }) {
            return Carried(context: context, value: value)
        }
        let context = context
        let read = onNewThread { context.currentValue }
        // Two first uses at once may both read; they read the same thing, and the first one kept wins.
        let value = unboundValue.withLock { kept in
            if kept == nil { kept = read }
            return kept.unsafelyUnwrapped
        }
        return Carried(context: context, value: value)
    }
}

struct Carried<Context: CarriedContext>: CarriedEntry {
    let context: Context
    let value: Context.Value

    var listing: String { "\(context) = \(value) (carried)" }

    func enter(_ body: () -> Void) {
        context.withValue(value, operation: body)
    }

    func enter(_ isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        await context.withValue(value, isolation: isolation, operation: body)
    }
}

// MARK: - A thread outside every task and binding

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
