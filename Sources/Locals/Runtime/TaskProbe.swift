import _LocalsRuntime

/// Confirms what `TaskRuntime` relies on, by creating tasks of every kind and asking the runtime
/// about them. Runs once per process, at first use, on a thread of its own: every task it makes
/// runs on that thread (a task executor preference), so the check needs nothing from the global
/// executor's threads and cannot wait for them, whatever the calling thread is doing.
enum TaskProbe {
    /// What one task reports about itself.
    struct Report {
        var address: UInt
        /// The running task's address as `TaskIdentity` finds it (0 without the entry point).
        var runtimeAddress: UInt
        var id: UInt64
        var flags: UInt32
        var isa: UInt
        /// The word at the candidate parent-pointer offset, for a child task.
        var parentWord: UInt?
    }

    static func run() -> TaskRuntime.Facts {
        var facts = TaskRuntime.Facts(runtime: TaskRuntime.describeRuntime())
        guard locals_runtime_has_task_entry_points() else {
            facts.failures[.taskIdentity] = "the runtime does not export swift_task_getJobTaskId and swift_task_getJobFlags"
            return facts
        }
        let offset = candidateParentOffset()
        let executor = ProbeExecutor()
        let outcome = executor.runToCompletion {
            await probe(parentOffset: offset.offset, executor: executor)
        }
        facts.failures.merge(outcome.failures) { first, _ in first }
        if let reason = offset.failure {
            facts.failures[.asyncLetParent] = facts.failures[.asyncLetParent] ?? reason
        }
        if facts.confirms(.asyncLetParent) {
            facts.parentOffset = offset.offset
        }
        return facts
    }

    /// Where the parent pointer would be, if the runtime publishes a task size for a layout
    /// version the library knows.
    static func candidateParentOffset() -> (offset: Int?, failure: String?) {
        let version = locals_runtime_layout_version()
        guard TaskRuntime.knownLayoutVersions.contains(version) else {
            return (nil, version == 0 ? "the runtime publishes no layout version" : "unknown layout version \(version)")
        }
        let size = locals_runtime_async_task_size()
        let word = MemoryLayout<UInt>.size
        // A task object is a few dozen words; anything else is not a size to read past.
        guard size >= 16 * word, size <= 128 * word, size % word == 0 else {
            return (nil, "implausible task size \(size)")
        }
        return (size, nil)
    }

    struct Outcome: Sendable {
        var failures: [TaskRuntime.Fact: String] = [:]
    }

    static func report(parentOffset: Int?) -> Report {
        withUnsafeCurrentTask { task in
            let header = unsafeBitCast(task!, to: UnsafeRawPointer.self)
            return Report(
                address: UInt(bitPattern: header),
                runtimeAddress: locals_runtime_has_current_task()
                    ? locals_runtime_current_task() : UInt(bitPattern: header),
                id: locals_runtime_task_id(header),
                flags: locals_runtime_job_flags(header),
                isa: header.load(as: UInt.self),
                parentWord: parentOffset.map { header.load(fromByteOffset: $0, as: UInt.self) }
            )
        }
    }

    static func probe(parentOffset: Int?, executor: ProbeExecutor) async -> Outcome {
        var outcome = Outcome()
        // Only child tasks have the word after the task object; the root reports none.
        let root = report(parentOffset: nil)
        async let asyncLet = report(parentOffset: parentOffset)
        async let nested = { () async -> (Report, Report) in
            async let inner = report(parentOffset: parentOffset)
            return (report(parentOffset: parentOffset), await inner)
        }()
        let groupChild = await withTaskGroup(of: Report.self) { group in
            group.addTask { report(parentOffset: parentOffset) }
            return await group.next()!
        }
        let unstructured = await Task(executorPreference: executor) { report(parentOffset: nil) }.value
        let (outer, inner) = await nested
        let direct = await asyncLet
        let all = [root, direct, outer, inner, groupChild, unstructured]

        // 1. Identity.
        if all.contains(where: { $0.id == 0 }) {
            outcome.failures[.taskIdentity] = "swift_task_getJobTaskId returned 0 for a running task"
        } else if Set(all.map(\.id)).count != all.count {
            outcome.failures[.taskIdentity] = "swift_task_getJobTaskId returned one id for two live tasks"
        } else if all.contains(where: { $0.runtimeAddress != $0.address }) {
            outcome.failures[.taskIdentity] = "swift_task_getCurrent and withUnsafeCurrentTask name different tasks"
        }

        // 2. Task kinds and task end.
        let asyncLets = [direct, outer, inner]
        let heap = [root, groupChild, unstructured]
        let metadata = UInt(bitPattern: locals_runtime_task_metadata())
        if let bad = all.first(where: { $0.flags & TaskRuntime.jobKindMask != 0 }) {
            outcome.failures[.taskEnd] = "job flags 0x\(String(bad.flags, radix: 16)) do not mark a task"
        } else if !asyncLets.allSatisfy({ $0.flags & TaskRuntime.asyncLetFlag != 0 })
            || heap.contains(where: { $0.flags & TaskRuntime.asyncLetFlag != 0 })
        {
            outcome.failures[.taskEnd] = "the async let flag does not mark async let children only"
        } else if metadata == 0 {
            outcome.failures[.taskEnd] = "the runtime does not publish the task metadata"
        } else if !all.allSatisfy({ $0.isa == metadata }) {
            outcome.failures[.taskEnd] = "a task's class is not the published task metadata"
        } else if let failure = await checkPins(executor: executor) {
            outcome.failures[.taskEnd] = failure
        }

        // 3. The parent pointer.
        if parentOffset != nil {
            let children = asyncLets + [groupChild]
            if !children.allSatisfy({ $0.flags & TaskRuntime.childTaskFlag != 0 })
                || [root, unstructured].contains(where: { $0.flags & TaskRuntime.childTaskFlag != 0 })
            {
                outcome.failures[.asyncLetParent] = "the child task flag does not mark child tasks only"
            } else if direct.parentWord != root.address || groupChild.parentWord != root.address {
                outcome.failures[.asyncLetParent] = "the word after a child task object is not its parent"
            } else if inner.parentWord != outer.address {
                outcome.failures[.asyncLetParent] = "the word after a nested async let child is not its parent"
            }
        }
        return outcome
    }

    /// Hands a pin out of the task it pins.
    final class PinBox: @unchecked Sendable {
        // @unchecked: written by the pinned task before it returns, read after it was awaited.
        var pin: TaskPin?
        var uniqueWhileRunning = true
    }

    /// A pinned heap task is not uniquely referenced while it runs, and is once it has ended and
    /// its handle is gone.
    static func checkPins(executor: ProbeExecutor) async -> String? {
        let box = PinBox()
        await pinAndFinish(box, executor: executor)  // the handle is gone when this returns
        guard var pin = box.pin.take() else { return "a heap task could not be pinned" }
        if box.uniqueWhileRunning {
            return "a pinned running task is uniquely referenced"
        }
        // The task releases itself as it completes; give the executor a few turns to finish that.
        for _ in 0..<100 {
            if TaskPin.taskHasEnded(&pin) { return nil }
            await Task.yield()
        }
        return "an ended task with no handle left is still referenced by more than its pin"
    }

    static func pinAndFinish(_ box: PinBox, executor: ProbeExecutor) async {
        await Task(executorPreference: executor) {
            withUnsafeCurrentTask { task in
                var pin = unsafeBitCast(task!, to: TaskPin.self)
                box.uniqueWhileRunning = TaskPin.taskHasEnded(&pin)
                box.pin = pin
            }
        }.value
    }
}

/// A task executor that runs its jobs on one thread of its own, until the work it was started
/// with finishes. Used once per process, by `TaskProbe`.
final class ProbeExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `jobs` and `done` are only touched with `mutex` held.
    private var jobs: [UnownedJob] = []
    private var done = false
    private let mutex = PlatformMutex()

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        mutex.withLock {
            jobs.append(job)
            mutex.broadcast()
        }
    }

    /// Runs `work` in a task on this executor's own thread, and blocks the caller until it ends.
    func runToCompletion<R: Sendable>(_ work: @escaping @Sendable () async -> R) -> R {
        let result = ResultBox<R>()
        Task(executorPreference: self) {
            result.value = await work()
            self.finish()
        }
        Platform.runOnNewThread { self.drain() }
        return result.value!
    }

    private func finish() {
        mutex.withLock {
            done = true
            mutex.broadcast()
        }
    }

    /// Runs jobs as they come, until the work is done and no job is left.
    private func drain() {
        let me = asUnownedTaskExecutor()
        while true {
            let (batch, finished) = mutex.withLock {
                while jobs.isEmpty && !done {
                    mutex.wait()
                }
                let batch = jobs
                jobs.removeAll()
                return (batch, done && batch.isEmpty)
            }
            if finished { return }
            for job in batch {
                job.runSynchronously(on: me)
            }
        }
    }

    private final class ResultBox<R>: @unchecked Sendable {
        // @unchecked: written by the probe's task before the thread that ran it is joined.
        var value: R?
    }
}
