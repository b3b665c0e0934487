import _LocalsRuntime

// The one place in swift-locals that relies on Swift runtime behavior the language does not promise.
//
// Swift has no public task identity that is never reused, and no hook at task creation or end.
// What the library needs, it asks the running runtime through the entry points and debug
// variables `libswift_Concurrency` exports (declared in the `_LocalsRuntime` C target), and it
// confirms each fact once, at first use, by creating tasks of every kind on a thread of its own
// and checking that the runtime answers as expected. No compiler or OS version decides a layout.
//
// 1. Identity: `swift_task_getJobTaskId` gives each task a 64-bit id that the process never
//    repeats. Every identity that is compared without a pin (a cell, a scope's owner, `TaskID`)
//    uses it. The running task's address comes from `swift_task_getCurrent`, the entry point
//    `withUnsafeCurrentTask` calls, without the retain and release of the task that function adds
//    (where the runtime lacks it, from `withUnsafeCurrentTask`). Checked: ids are non-zero and
//    differ between tasks, and both ways name the same task. If this fails there is no correct
//    identity left, and `.task` stops at first use with a message naming the runtime.
// 2. Task end: `swift_task_getJobFlags` marks an `async let` child (bit 28). Such a task lives in
//    its parent's stack allocator with immortal reference counts and is destroyed in place, so it
//    is never retained. Every other task is an ordinary reference-counted heap object (its class
//    is the runtime's published task metadata) that retains itself while it runs: a strong
//    reference to it (a "pin") keeps its address from being reused, and once the pin is the only
//    reference left, the task has ended. Checked: the flags of every kind of task, the metadata,
//    and a pinned task that is not uniquely referenced while it runs and is once it ended.
//    Fallback: nothing is pinned; a value outside any scope is released when a later task starts
//    at the same address, and one inside a scope with the scope.
// 3. An `async let` child's parent: a child task has a `ChildFragment` right after its task
//    object, whose first word is the parent task. The object's size is the runtime's published
//    `_swift_concurrency_debug_asyncTaskSize`, accepted for known layout versions only. An `async
//    let` child ends before its nearest heap ancestor does, so that ancestor's pin bounds the
//    child's value. Checked: the word read from an `async let` child, a nested one and a task-group
//    child is the parent's address. Fallback: as for 2, for `async let` children only.

/// What swift-locals confirmed about the running concurrency runtime, once per process.
enum TaskRuntime {
    /// A fact the library relies on, each with its own check and fallback.
    enum Fact: String, CaseIterable, Sendable {
        case taskIdentity = "64-bit task ids"
        case taskEnd = "task end detection"
        case asyncLetParent = "async let parent pointer"

        /// The facts whose failure leaves a correct fallback (the others stop at first use).
        static let withFallback: [Fact] = [.taskEnd, .asyncLetParent]
    }

    /// The outcome of the checks, fixed at first use.
    struct Facts: Sendable {
        /// The runtime, as it describes itself.
        var runtime: String
        /// Why each fact that could not be confirmed failed.
        var failures: [Fact: String] = [:]
        /// The offset of a child task's parent pointer, where confirmed.
        var parentOffset: Int?

        func confirms(_ fact: Fact) -> Bool { failures[fact] == nil }
    }

    /// The layout versions whose `asyncTaskSize` is known to place the child fragment right after
    /// the task object (1: Swift 6.1 through 6.3).
    static let knownLayoutVersions: ClosedRange<UInt32> = 1...1

    static let facts: Facts = {
        var forced = forcedFailures.withLock { state -> Set<Fact> in
            state.confirmed = true
            return state.forced
        }
        forced.formUnion(forcedByEnvironment())
        var facts = TaskProbe.run()
        for fact in Fact.allCases where forced.contains(fact) && facts.failures[fact] == nil {
            facts.failures[fact] = "forced to fail for a test"
        }
        // A fact that depends on a failed one cannot hold either.
        if !facts.confirms(.taskIdentity) {
            facts.failures[.taskEnd] = facts.failures[.taskEnd] ?? "needs 64-bit task ids"
        }
        if !facts.confirms(.taskEnd) {
            facts.failures[.asyncLetParent] = facts.failures[.asyncLetParent] ?? "needs task end detection"
        }
        if !facts.confirms(.asyncLetParent) {
            facts.parentOffset = nil
        }
        for fact in Fact.allCases {
            guard let reason = facts.failures[fact] else { continue }
            let line =
                "swift-locals: could not confirm \(fact.rawValue) on this runtime (\(facts.runtime)): \(reason). "
                + "\(fallback(for: fact)) See TaskDiscriminator.support.\n"
            Platform.writeToStandardError(line)
        }
        return facts
    }()

    static func fallback(for fact: Fact) -> String {
        switch fact {
        case .taskIdentity:
            "`.task` Locals stop at their first use in a task."
        case .taskEnd:
            "Tasks are not pinned: a task's value is released when a later task starts at its address, "
                + "or with the scope it was made in."
        case .asyncLetParent:
            "An async let child's value is released with the scope it was made in, or when a later task "
                + "starts at its address."
        }
    }

    /// Makes the checks for `facts` report failure, as on a runtime where they fail. For tests,
    /// in a process of their own (an exit test): it must run before anything uses a `.task` Local.
    static func forceFailing(_ facts: Set<Fact>) {
        forcedFailures.withLock { state in
            precondition(!state.confirmed, "swift-locals: the runtime was already checked in this process")
            state.forced.formUnion(facts)
        }
    }

    /// The checks named in `LOCALS_FORCE_FALLBACK` (comma-separated: `taskEnd`, `asyncLetParent`),
    /// made to fail so that a test run exercises their fallbacks, which are as correct, only
    /// slower to release values.
    ///
    /// A switch for the library's own test runs: read only in debug builds (what `swift test`
    /// builds), so that no release binary changes behavior because of its environment. Only the
    /// checks that have a fallback can be named: `taskIdentity` has none (a `.task` Local stops at
    /// first use where it fails), so it, like any other name, is ignored; tests force that stop in
    /// a process of their own with `forceFailing`.
    static func forcedByEnvironment() -> Set<Fact> {
        Set(namesForcedByEnvironment().compactMap { name in Fact.withFallback.first { "\($0)" == name } })
    }

    /// The names in `LOCALS_FORCE_FALLBACK`, in debug builds only (empty in release builds). Besides
    /// the checks above, `taskLocalPush` makes synchronous snapshot runs nest one call per part, as
    /// on a runtime that does not export the task-local push and pop entry points.
    static func namesForcedByEnvironment() -> [String] {
        #if DEBUG
        guard let raw = Platform.environment("LOCALS_FORCE_FALLBACK") else { return [] }
        return raw.split(separator: ",").map { String($0.filter { $0 != " " }) }
        #else
        return []
        #endif
    }

    private struct Forced {
        var forced: Set<Fact> = []
        var confirmed = false
    }

    private static let forcedFailures = Locked.make(Forced())

    /// Stops the program: there is no task identity that could keep values apart.
    static func requireIdentity() {
        guard let reason = facts.failures[.taskIdentity] else { return }
        fatalError(
            """
            swift-locals: `.task` Locals cannot tell tasks apart on this runtime (\(facts.runtime)): \
            \(reason). Please report it with the output of `swift --version` and your OS version; \
            `.thread` and custom discriminators still work.
            """
        )
    }

    // MARK: The running task

    /// How the running task's values are bound to its lifetime.
    enum Lifetime {
        /// A heap task, pinned: its pin says when it has ended.
        case pinned(TaskPin)
        /// An `async let` child, bounded by its nearest heap ancestor, which is pinned.
        case ancestor(TaskIdentity, TaskPin)
        /// No pin: the value is released with its scope, or when a later task reuses the address.
        case unpinned
    }

    /// How the running task `task` (the caller's own) is bound to its lifetime.
    static func lifetimeOfCurrentTask(_ task: TaskIdentity) -> Lifetime {
        guard let (holder, header) = recordHolder(ofCurrentTask: task) else { return .unpinned }
        // A native Swift heap object: reinterpreting the reference copies it with a native
        // retain, which keeps the task's memory (and so its address) alive.
        let pin = Unmanaged<TaskPin>.fromOpaque(header).takeUnretainedValue()
        return holder == task ? .pinned(pin) : .ancestor(holder, pin)
    }

    /// The task whose pin bounds the running task `task` (the caller's own), and its object: the
    /// task itself for a heap task, its nearest heap ancestor for an `async let` child; nil where
    /// the runtime gives no pin. Makes no reference to either (a capture only needs to know
    /// whose record to look in).
    static func recordHolder(ofCurrentTask task: TaskIdentity) -> (TaskIdentity, UnsafeRawPointer)? {
        requireIdentity()
        guard facts.confirms(.taskEnd), let header = UnsafeRawPointer(bitPattern: task.address) else {
            return nil
        }
        guard isAsyncLet(header) else { return (task, header) }
        guard let offset = facts.parentOffset else { return nil }
        // Every task on the way up is alive: an ancestor outlives a running `async let` child.
        var child = header
        while let parent = UnsafeRawPointer(bitPattern: child.load(fromByteOffset: offset, as: UInt.self)) {
            if !isAsyncLet(parent) {
                return (TaskIdentity(address: UInt(bitPattern: parent), id: locals_runtime_task_id(parent)), parent)
            }
            child = parent
        }
        return nil
    }

    /// The running task's parent, where it is a child task (of an `async let` or a task group)
    /// and the runtime confirmed the parent pointer; nil for any other task, or unconfirmed.
    static func parentOfCurrentTask(_ task: TaskIdentity) -> TaskIdentity? {
        guard facts.confirms(.taskEnd), let offset = facts.parentOffset,
            let header = UnsafeRawPointer(bitPattern: task.address),
            locals_runtime_job_flags(header) & childTaskFlag != 0,
            let parent = UnsafeRawPointer(bitPattern: header.load(fromByteOffset: offset, as: UInt.self))
        else { return nil }
        // The parent outlives its running child: its id can be read.
        return TaskIdentity(address: UInt(bitPattern: parent), id: locals_runtime_task_id(parent))
    }

    /// Bit 24 of the job flags (`Task_IsChildTask`): a task with a parent pointer.
    static let childTaskFlag: UInt32 = 1 << 24

    /// Bit 28 of the job flags (`Task_IsAsyncLetTask`).
    static let asyncLetFlag: UInt32 = 1 << 28
    /// The job kind, in the low byte: 0 for a task.
    static let jobKindMask: UInt32 = 0xFF

    static func isAsyncLet(_ task: UnsafeRawPointer) -> Bool {
        locals_runtime_job_flags(task) & asyncLetFlag != 0
    }

    /// The runtime, as it describes itself: its layout version and task size, and the platform.
    static func describeRuntime() -> String {
        let version = locals_runtime_layout_version()
        let size = locals_runtime_async_task_size()
        let layout = version == 0 ? "no published layout version" : "layout version \(version)"
        let task = size == 0 ? "no published task size" : "task objects of \(size) bytes"
        return "Swift concurrency runtime with \(layout), \(task), on \(Platform.systemDescription)"
    }
}

/// A stand-in class type for a pinned task object. Never instantiated, never dereferenced: a
/// `TaskPin` reference only holds a retain on a task and answers whether it is the last one.
final class TaskPin {
    private init() {}

    /// True once the task has ended and nothing but this pin refers to it.
    static func taskHasEnded(_ pin: inout TaskPin) -> Bool {
        isKnownUniquelyReferenced(&pin)
    }
}
