/// Keys values by the running Swift task; in code outside any task, by the running thread.
///
/// This is the default discriminator (spelled `.task`). Each task gets its own value, created by
/// the Local's initializer on the task's first touch (a read counts) and released after the task
/// ends, with no call from you. A task never sees a finished task's values, although Swift reuses
/// the memory of finished tasks at once.
///
/// Code that runs outside any task (a plain `Thread`, a `DispatchQueue` block, an `EventLoopFuture`
/// callback, synchronous `main` before any task starts) gets one value per thread instead, exactly
/// like ``ThreadDiscriminator``, so synchronous code behaves like Python's `threading.local`.
///
/// - Important: Outside tasks the value belongs to the *thread*, not to the work it runs. Two
///   unrelated `DispatchQueue` blocks (or event-loop callbacks) that run on one worker thread share
///   a value: a block can read what an earlier block, serving another request, left there, and no
///   block sees the values of the task that submitted it. Carry the submitter's values across with
///   a ``LocalsSnapshot``: `queue.asyncWithLocals { ... }`, or `snapshot.run { ... }` in the
///   callback (see <doc:CallbacksEventLoopsAndQueues>).
///
/// Values reach child tasks only through scopes (``Local/withValues(_:inheritance:file:line:operation:)``):
/// see <doc:ScopesAndInheritance>.
public struct TaskDiscriminator: Discriminator {
    public init() {}

    /// ``ValueStorage/perTask``: values released when their task ends, scopes inherited.
    public var valueStorage: ValueStorage { .perTask }

    /// The running task, or the running thread outside any task. Never nil.
    public var currentKey: Key? {
        if let task = TaskID.current {
            return .task(task)
        }
        return .thread(ThreadContext.current.id)
    }

    /// The context a ``TaskDiscriminator`` keys values by.
    public enum Key: Hashable, Sendable, CustomStringConvertible {
        /// A running task.
        case task(TaskID)
        /// A thread running code outside any task.
        case thread(ThreadID)

        public var description: String {
            switch self {
            case .task(let task): task.description
            case .thread(let thread): thread.description
            }
        }
    }
}

/// Identifies a task: no other task of the process, running at the same time or later, has an
/// equal `TaskID`, although Swift reuses the memory of finished tasks at once.
///
/// It is the runtime's 64-bit task id (which a process never repeats) with the task's address.
public struct TaskID: Hashable, Sendable, CustomStringConvertible {
    let address: UInt
    let id: UInt64

    init(_ identity: TaskIdentity) {
        address = identity.address
        id = identity.id
    }

    /// The running task's identifier, or nil outside any task.
    ///
    /// On a runtime whose task ids could not be confirmed (see ``TaskDiscriminator/support``),
    /// stops the program with a message naming the runtime.
    public static var current: TaskID? {
        guard let task = TaskIdentity.current else { return nil }
        TaskRuntime.requireIdentity()
        return TaskID(task)
    }

    public var description: String { "task #\(id)" }
}
