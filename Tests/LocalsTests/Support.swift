// Shared helpers for the Locals test suite: a value type to store, deinit counting, explicit
// signals that force orderings between tasks, thread helpers, and the kinds of child task.
//
// Nothing here sleeps to decide an outcome. The only timeouts are upper bounds that turn a hang
// (a bug) into a failure instead of a stuck CI job.

import Foundation
import Locals
import Synchronization
import Testing

// MARK: - A value to store

/// The value most tests store in a `Local`. Every field starts at a recognizable initial value.
struct Sample: Sendable {
    static let initial = "initial"
    static let initialList = [initial, initial]

    var simple = Sample.initial
    var late = Sample.initial
    var list = Sample.initialList
    var id = -1
    var count = 0
    var tracked: Tracked?
}

// MARK: - A lock Thread Sanitizer can see

/// A value guarded by a pthread mutex (through `NSLock`). `Synchronization.Mutex` waits with raw
/// futex calls on Linux, which Thread Sanitizer cannot see, so it would report the helpers' own
/// guarded accesses as races.
final class Protected<State>: @unchecked Sendable {
    // @unchecked: `state` is only touched while `lock` is held.
    private let lock = NSLock()
    private var state: State

    init(_ state: State) { self.state = state }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

// MARK: - Deinit counting

/// Counts deinitializations of `Tracked` objects, and lets a test wait for a count to be reached.
final class DeinitCounter: Sendable {
    private let state = Protected(State())

    private struct State {
        var count = 0
        var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    var count: Int { state.withLock { $0.count } }

    /// A new tracked object whose deinit this counter counts.
    func make(_ tag: Int = 0) -> Tracked { Tracked(tag: tag, counter: self) }

    fileprivate func increment() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count += 1
            let count = state.count
            let ready = state.waiters.filter { $0.target <= count }.map(\.continuation)
            state.waiters.removeAll { $0.target <= count }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until at least `target` objects were deinitialized; false if that did not happen
    /// within `timeout` (a generous bound that only turns a missing release into a failure).
    func wait(untilAtLeast target: Int, timeout: Duration = .seconds(20)) async -> Bool {
        let reached = Signal()
        Task {
            await withCheckedContinuation { continuation in
                let already = state.withLock { state -> Bool in
                    if state.count >= target { return true }
                    state.waiters.append((target, continuation))
                    return false
                }
                if already { continuation.resume() }
            }
            reached.fire()
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            reached.fire()
        }
        await reached.wait()
        timer.cancel()
        return count >= target
    }
}

/// An object whose deinit increments its counter. Store one in a value to see when the value is
/// released.
final class Tracked: Sendable {
    let tag: Int
    let counter: DeinitCounter
    /// Runs in deinit, before the count is incremented (to touch Locals from a deinit).
    let onDeinit: (@Sendable () -> Void)?

    init(tag: Int, counter: DeinitCounter, onDeinit: (@Sendable () -> Void)? = nil) {
        self.tag = tag
        self.counter = counter
        self.onDeinit = onDeinit
    }

    deinit {
        onDeinit?()
        counter.increment()
    }
}

// MARK: - The runtime checks this process runs with

/// Whether the library confirmed task end detection on this runtime. CI also runs the suite with
/// each runtime check forced to fail (`LOCALS_FORCE_FALLBACK`); tests of a prompt release then
/// give way to tests of the fallback's release.
let pinsTasks = TaskDiscriminator.support.taskEnd.isConfirmed

/// Whether the library confirmed where an `async let` child's parent is.
let findsAsyncLetParents = TaskDiscriminator.support.asyncLetParent.isConfirmed

// MARK: - Sanitizers

/// Whether this process runs under Thread Sanitizer (which makes everything about 5x slower).
let runningUnderThreadSanitizer = isLoaded("__tsan_init")

/// Whether this process runs under Address Sanitizer, whose allocator quarantines freed memory
/// (so resident memory grows by design, and freed addresses are not reused soon).
let runningUnderAddressSanitizer = isLoaded("__asan_init")

/// Whether some image loaded in this process defines `symbol`.
private func isLoaded(_ symbol: String) -> Bool {
    // `RTLD_DEFAULT`, a macro Swift does not import: -2 on Apple platforms, null elsewhere.
    #if canImport(Darwin)
    let everyImage = UnsafeMutableRawPointer(bitPattern: -2)
    #else
    let everyImage: UnsafeMutableRawPointer? = nil
    #endif
    return dlsym(everyImage, symbol) != nil
}

// MARK: - Counters

/// Counts calls of a Local's initializer.
final class CallCounter: Sendable {
    private let calls = Atomic<Int>(0)

    var count: Int { calls.load(ordering: .sequentiallyConsistent) }

    func increment() { calls.add(1, ordering: .sequentiallyConsistent) }

    /// Increments and returns the new count.
    func incremented() -> Int { calls.add(1, ordering: .sequentiallyConsistent).newValue }
}

// MARK: - Explicit signals

/// A one-shot signal: `wait()` returns once `fire()` was called (before or after the wait).
final class Signal: Sendable {
    private let state = Protected<State>(.pending([]))

    private enum State {
        case pending([CheckedContinuation<Void, Never>])
        case fired
    }

    init() {}

    var isFired: Bool {
        state.withLock { if case .fired = $0 { true } else { false } }
    }

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .pending(let waiters) = state else { return [] }
            state = .fired
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                switch state {
                case .fired:
                    return true
                case .pending(var waiters):
                    waiters.append(continuation)
                    state = .pending(waiters)
                    return false
                }
            }
            if fired { continuation.resume() }
        }
    }
}

/// A countdown: `arriveAndWait()` returns once `count` tasks have arrived. Forces tasks to be
/// alive at the same time.
final class Latch: Sendable {
    private let remaining: Protected<Int>
    private let open = Signal()

    init(_ count: Int) {
        remaining = Protected(count)
        if count <= 0 { open.fire() }
    }

    func arrive() {
        let left = remaining.withLock { remaining -> Int in
            remaining -= 1
            return remaining
        }
        if left == 0 { open.fire() }
    }

    func wait() async { await open.wait() }

    func arriveAndWait() async {
        arrive()
        await wait()
    }
}

/// Suspends until the current task is cancelled.
func waitUntilCancelled() async {
    let cancelled = Signal()
    await withTaskCancellationHandler {
        await cancelled.wait()
    } onCancel: {
        cancelled.fire()
    }
}

/// Waits (yielding) until `condition` holds; false if it did not within `timeout`. For facts
/// that become true a moment after an event the test cannot observe directly (a task's last
/// release after its awaiter was resumed). The timeout only bounds a failure.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var spins = 0
    while !condition() {
        if clock.now > deadline { return false }
        spins += 1
        if spins < 1_000 {
            await Task.yield()
        } else {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
    return true
}

/// A value set once and read from anywhere (to hand a Local to its own initializer, say).
final class Box<T: Sendable>: Sendable {
    private let storage = Protected<T?>(nil)

    init() {}

    var value: T? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Collects values from many tasks.
final class Collector<Element: Sendable>: Sendable {
    private let items = Protected<[Element]>([])

    func append(_ item: Element) { items.withLock { $0.append(item) } }

    var values: [Element] { items.withLock { $0 } }
}

// MARK: - Threads

/// Runs `body` on a new Foundation `Thread` (outside any task) and returns its result once the
/// body has finished. The thread may still be exiting when this returns.
func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        thread.start()
    }
}

/// Synchronous form of `onNewThread`, for code that is itself on a plain thread: joins with a
/// semaphore. Returns nil if the thread did not finish within `timeout` (a hang, i.e. a bug).
func onNewThreadBlocking<T: Sendable>(timeout: DispatchTimeInterval = .seconds(20), _ body: @escaping @Sendable () -> T) -> T? {
    let done = DispatchSemaphore(value: 0)
    let result = Protected<T?>(nil)
    let thread = Thread {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }
    thread.start()
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    return result.withLock { $0 }
}

/// A barrier for plain threads: `arriveAndWait()` returns once `count` threads have arrived.
final class ThreadBarrier: @unchecked Sendable {
    // @unchecked: `remaining` is only touched while `condition` is locked.
    private let condition = NSCondition()
    private var remaining: Int

    init(_ count: Int) { remaining = count }

    func arriveAndWait() {
        condition.lock()
        remaining -= 1
        if remaining == 0 { condition.broadcast() }
        while remaining > 0 { condition.wait() }
        condition.unlock()
    }
}

// MARK: - Child tasks

/// The ways to create a child task that may inherit a scope.
enum ChildKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case unstructuredTask = "Task {}"
    #if compiler(>=6.2)
    case immediateTask = "Task.immediate"
    #endif
    case asyncLet = "async let"
    case taskGroup = "TaskGroup"
    case throwingTaskGroup = "ThrowingTaskGroup"
    case discardingTaskGroup = "DiscardingTaskGroup"
    case throwingDiscardingTaskGroup = "ThrowingDiscardingTaskGroup"

    var testDescription: String { rawValue }

    /// Every kind this toolchain and OS can create: `Task.immediate` only where
    /// `immediateTasksAvailable`.
    static var allCases: [ChildKind] {
        var kinds: [ChildKind] = [.unstructuredTask]
        #if compiler(>=6.2)
        if immediateTasksAvailable { kinds.append(.immediateTask) }
        #endif
        return kinds + [.asyncLet, .taskGroup, .throwingTaskGroup, .discardingTaskGroup, .throwingDiscardingTaskGroup]
    }

    /// The three most common ways to create a child, for the slower tests; the others are checked
    /// by the table test and the model check.
    static let core: [ChildKind] = [.unstructuredTask, .asyncLet, .taskGroup]
}

/// Creates a child of `kind` running `body`, runs `meanwhile` in the calling task while the child
/// runs, then awaits the child and returns its result.
func inChild<R: Sendable>(
    _ kind: ChildKind,
    _ body: @escaping @Sendable () async -> R,
    meanwhile: () async -> Void = {}
) async -> R {
    switch kind {
    case .unstructuredTask:
        let task = Task { await body() }
        await meanwhile()
        return await task.value
    #if compiler(>=6.2)
    case .immediateTask:
        let task = immediateTask { await body() }
        await meanwhile()
        return await task.value
    #endif
    case .asyncLet:
        async let result = body()
        await meanwhile()
        return await result
    case .taskGroup:
        return await withTaskGroup(of: R.self) { group in
            group.addTask { await body() }
            await meanwhile()
            return await group.next()!
        }
    case .throwingTaskGroup:
        return try! await withThrowingTaskGroup(of: R.self) { group in
            group.addTask { await body() }
            await meanwhile()
            return try await group.next()!
        }
    case .discardingTaskGroup:
        let box = Box<R>()
        await withDiscardingTaskGroup { group in
            group.addTask { box.value = await body() }
            await meanwhile()
        }
        return box.value!
    case .throwingDiscardingTaskGroup:
        let box = Box<R>()
        try! await withThrowingDiscardingTaskGroup { group in
            group.addTask { box.value = await body() }
            await meanwhile()
        }
        return box.value!
    }
}

/// Whether this toolchain and OS can start a task with `Task.immediate`: Swift 6.2 added it, and
/// Apple platforms have its runtime from macOS 26 (and the iOS, tvOS, watchOS and visionOS of the
/// same year) on.
let immediateTasksAvailable: Bool = {
    #if compiler(>=6.2)
    if #available(macOS 26.0, iOS 26.0, tvOS 26.0, watchOS 26.0, visionOS 26.0, *) { return true }
    #endif
    return false
}()

#if compiler(>=6.2)
/// `Task.immediate { await body() }`: runs `body` on the calling thread up to its first suspension.
/// Only where `immediateTasksAvailable`.
@discardableResult
func immediateTask<R: Sendable>(_ body: @escaping @Sendable () async -> R) -> Task<R, Never> {
    guard #available(macOS 26.0, iOS 26.0, tvOS 26.0, watchOS 26.0, visionOS 26.0, *) else {
        preconditionFailure("Task.immediate needs macOS 26, iOS 26, tvOS 26, watchOS 26 or visionOS 26")
    }
    return Task.immediate { await body() }
}
#endif

/// Runs `body` in a `Task.detached` and returns its result.
func inDetachedTask<R: Sendable>(_ body: @escaping @Sendable () async -> R) async -> R {
    await Task.detached { await body() }.value
}

// MARK: - Custom discriminators

/// Keys values by a session id bound with a task-local, as a server would.
struct SessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    var currentKey: String? { Self.session }
}

/// A key whose hash is the same for every instance: only `==` tells keys apart.
struct CollidingKey: Hashable, Sendable {
    let id: Int
    static func == (a: CollidingKey, b: CollidingKey) -> Bool { a.id == b.id }
    func hash(into hasher: inout Hasher) { hasher.combine(0) }
}

struct CollidingDiscriminator: Discriminator {
    @TaskLocal static var key: CollidingKey?
    var currentKey: CollidingKey? { Self.key }
}

// MARK: - What a child sees under each policy

/// One row of the table of what a child sees under each policy (the table in the `Inheritance`
/// documentation): the child's first read, its read of a write its owner made after creating it,
/// and what the owner reads after the child wrote.
struct TableRow: Equatable, CustomStringConvertible {
    var childFirstSimple: String
    var childLate: String
    var ownerSimpleAfter: String
    var ownerListAfter: [String]

    var description: String {
        "child first read \(childFirstSimple), child late \(childLate), owner after \(ownerSimpleAfter) \(ownerListAfter)"
    }

    /// What the table says each policy gives.
    static func expected(_ policy: Inheritance) -> TableRow {
        let parentList = ["from", "parent"]
        return switch policy {
        case .copy: TableRow(childFirstSimple: "from parent", childLate: Sample.initial,
                             ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        case .overlay: TableRow(childFirstSimple: "from parent", childLate: "after spawn",
                                ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        case .shared: TableRow(childFirstSimple: "from parent", childLate: "after spawn",
                               ownerSimpleAfter: "from child", ownerListAfter: ["from", "child"])
        case .fresh: TableRow(childFirstSimple: Sample.initial, childLate: Sample.initial,
                              ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        }
    }
}

// MARK: - Exit tests

#if compiler(>=6.2)
/// What an exit test's process wrote to standard error ("" if there is no result to read).
func standardError(of result: ExitTest.Result?) -> String {
    result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
}
#endif
