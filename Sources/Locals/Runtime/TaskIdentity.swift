public import _LocalsRuntime  // public: the inlined read path asks the runtime for the task's id

/// The identity of a running task: its address and the runtime's 64-bit id for it.
///
/// Swift has no public task identity that is never reused: `withUnsafeCurrentTask` hands out the
/// running task's address, and the runtime reuses addresses at once. The concurrency runtime's
/// exported `swift_task_getJobTaskId` gives the task's full 64-bit id, which a process never
/// repeats, so address plus id tells a task from every other task, earlier or later, with no
/// pin needed. `TaskRuntime` confirms at first use that the runtime answers as expected.
///
/// With address 0 (no task has it) and a thread's serial number as `id`, the same pair names a
/// thread: the storage keys cells by it as `OwnerKey`.
@usableFromInline
struct TaskIdentity: Hashable, Sendable, CustomStringConvertible {
    /// The task object's address. Unique among running tasks; reused after a task ends.
    @usableFromInline let address: UInt
    /// The runtime's 64-bit id for the task: never shared with any other task of the process.
    @usableFromInline let id: UInt64

    @inlinable
    init(address: UInt, id: UInt64) {
        self.address = address
        self.id = id
    }

    /// The identity of the task running now, or nil outside any task.
    @inlinable
    static var current: TaskIdentity? {
        let address = currentAddress
        guard let task = UnsafeRawPointer(bitPattern: address) else { return nil }
        return TaskIdentity(address: address, id: locals_runtime_task_id(task))
    }

    /// The running task's address, 0 outside any task: enough to tell the running task from
    /// another one that is running too (a task that is running cannot share its address).
    @inlinable
    static var currentAddress: UInt {
        // The runtime's own answer, with no reference counting: `withUnsafeCurrentTask` asks the
        // same entry point, then retains and releases the task around its body (two atomic
        // operations on the task object, about half of what this costs). The running task stays
        // valid however it was found, since this code runs in that task. `TaskProbe` confirms
        // that both give the same address.
        locals_runtime_has_current_task()
            ? locals_runtime_current_task()
            // The closure returns only the address (a trivial Int, the cheapest form).
            : withUnsafeCurrentTask { unsafeBitCast($0, to: UInt.self) }
    }

    @usableFromInline var description: String { address == 0 ? "thread #\(id)" : "task #\(id)" }
}
