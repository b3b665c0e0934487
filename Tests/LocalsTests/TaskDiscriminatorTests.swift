import Locals
import Testing

@Suite("TaskDiscriminator: one value per task, per thread outside tasks")
struct TaskDiscriminatorTests {
    @Test("concurrent tasks keep their own values across many suspension points")
    func concurrentTasksKeepTheirValues() async {
        let local = Local { Sample() }
        let tasks = 32
        let allWritten = Latch(tasks)
        let mismatches = Collector<String>()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<tasks {
                group.addTask {
                    #expect(local.id == -1, "task \(i) saw another task's value before writing")
                    local.id = i
                    local.simple = "task \(i)"
                    // Every task has written before any of them goes on: their lifetimes overlap.
                    await allWritten.arriveAndWait()
                    for step in 0..<200 {
                        await Task.yield()
                        if local.id != i || local.simple != "task \(i)" || local.count != step {
                            mismatches.append("task \(i) step \(step): id \(local.id), \(local.simple)")
                            return
                        }
                        local.count += 1
                    }
                }
            }
        }
        #expect(mismatches.values.count == 0, "\(mismatches.values.prefix(5))")
    }

    @Test("sequential tasks each read the initial value first, though Swift reuses task addresses",
          arguments: ["Task {}", "Task.detached", "TaskGroup child", "async let"])
    func sequentialTasksStartFresh(kind: String) async {
        let local = Local { Sample() }
        let count = kind == "Task {}" ? 3_000 : 1_000
        var stale: [Int] = []
        for i in 0..<count {
            let body: @Sendable () async -> Int? = {
                let first = local.id
                local.id = i
                local.simple = "task \(i)"
                #expect(local.id == i)
                return first == -1 ? nil : first
            }
            let seen: Int?
            switch kind {
            case "Task {}": seen = await Task { await body() }.value
            case "Task.detached": seen = await Task.detached { await body() }.value
            case "TaskGroup child":
                seen = await withTaskGroup(of: Int?.self) { group in
                    group.addTask { await body() }
                    return await group.next()!
                }
            default:
                async let child = body()
                seen = await child
            }
            if let seen { stale.append(seen) }
        }
        #expect(stale.count == 0, "tasks saw values of finished tasks: \(stale.prefix(10))")
    }

    @Test("a fire-and-forget task keeps its values while other tasks churn",
          arguments: [false, true])
    func fireAndForgetKeepsValues(detached: Bool) async {
        let local = Local { Sample() }
        let fireAndForget = 100
        let allWritten = Latch(fireAndForget)
        let churnDone = Signal()
        let results = AsyncStream<(Int, Int, String)>.makeStream()
        for i in 0..<fireAndForget {
            let body: @Sendable () async -> Void = {
                local.id = i
                local.simple = "ff \(i)"
                await allWritten.arriveAndWait()
                await churnDone.wait()
                results.continuation.yield((i, local.id, local.simple))
            }
            // The handles are dropped at once.
            if detached {
                Task.detached { await body() }
            } else {
                Task { await body() }
            }
        }
        await allWritten.wait()
        // Thousands of other tasks touch the Local meanwhile (triggering any cleanup it does).
        for round in 0..<50 {
            await withTaskGroup(of: Void.self) { group in
                for j in 0..<100 {
                    group.addTask {
                        #expect(local.id == -1)
                        local.id = 1_000_000 + round * 100 + j
                        local.simple = "churn"
                    }
                }
            }
        }
        churnDone.fire()
        var seen = 0
        for await (i, id, simple) in results.stream {
            #expect(id == i)
            #expect(simple == "ff \(i)")
            seen += 1
            if seen == fireAndForget { break }
        }
        #expect(seen == fireAndForget)
    }

    @Test("cancelled tasks keep their own values and new tasks do not see them")
    func cancelledTasks() async {
        let local = Local { Sample() }
        let tasks = 40
        let allWritten = Latch(tasks)
        var handles: [Task<(Int, String, Bool), Never>] = []
        for i in 0..<tasks {
            handles.append(Task {
                local.id = i
                local.simple = "cancelled \(i)"
                await allWritten.arriveAndWait()
                await waitUntilCancelled()
                await Task.yield()
                return (local.id, local.simple, Task.isCancelled)
            })
        }
        await allWritten.wait()
        for handle in handles { handle.cancel() }
        for (i, handle) in handles.enumerated() {
            let (id, simple, cancelled) = await handle.value
            #expect(id == i)
            #expect(simple == "cancelled \(i)")
            #expect(cancelled)
        }
        // A task cancelled before it starts still reads the initial value first.
        for _ in 0..<200 {
            let task = Task { () -> Int in
                let first = local.id
                local.id = 99
                return first
            }
            task.cancel()
            #expect(await task.value == -1)
        }
    }

    @Test("TaskID and the discriminator's key name the running task, or the thread outside tasks")
    func currentKey() async {
        let inTask = await Task { (TaskID.current, TaskDiscriminator().currentKey) }.value
        #expect(inTask.0 != nil)
        if case .task(let id)? = inTask.1 {
            #expect(id == inTask.0)
        } else {
            Issue.record("expected a task key, got \(String(describing: inTask.1))")
        }
        let onThread = await onNewThread { (TaskID.current, TaskDiscriminator().currentKey, ThreadID.current) }
        #expect(onThread.0 == nil)
        if case .thread(let id)? = onThread.1 {
            #expect(id == onThread.2)
        } else {
            Issue.record("expected a thread key, got \(String(describing: onThread.1))")
        }
        let a = await Task { TaskID.current }.value
        let b = await Task { TaskID.current }.value
        #expect(a != b)
    }

    @Test(".task falls back to one value per thread on plain threads")
    func threadFallback() async {
        let local = Local { Sample() }
        let first = await onNewThread { () -> (Int, Int) in
            let before = local.id
            local.id = 1
            return (before, local.id)
        }
        #expect(first == (-1, 1))
        // A second plain thread has its own value, and so does a task.
        let second = await onNewThread { () -> Int in
            let before = local.id
            local.id = 2
            return before
        }
        #expect(second == -1)
        #expect(await Task { local.id }.value == -1)
        // Code on one thread sees its own writes across calls, like threading.local.
        let sameThread = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            for i in 0..<5 {
                seen.append(local.id)
                local.id = i
            }
            return seen
        }
        #expect(sameThread == [-1, 0, 1, 2, 3])
    }

    @Test("200 sequential plain threads never see a dead thread's .task-fallback values")
    func sequentialThreadsFallback() async {
        let local = Local { Sample() }
        var stale: [Int] = []
        for i in 0..<200 {
            let first = await onNewThread { () -> Int in
                let first = local.id
                local.id = i
                return first
            }
            if first != -1 { stale.append(first) }
        }
        #expect(stale.count == 0, "threads saw values of dead threads: \(stale.prefix(10))")
    }

    @Test("discard(key:) with a TaskID drops that task's value; it is released by the task's next touch")
    func discardTaskKey() async throws {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let written = Signal()
        let discarded = Signal()
        defer { discarded.fire() }  // never leave the task suspended, even if a check fails
        let ids = Box<TaskID>()
        let task = Task { () -> (Int, Int) in
            local.id = 5
            local.tracked = counter.make()
            ids.value = TaskID.current
            written.fire()
            await discarded.wait()
            let id = local.id  // the owner's next touch
            return (id, counter.count)
        }
        await written.wait()
        local.discard(key: try #require(ids.value))
        discarded.fire()
        let (id, releasedAtNextTouch) = await task.value
        #expect(id == -1)
        #expect(releasedAtNextTouch == 1, "the discarded value outlived the owner's next touch")
        // A discard from the owner itself releases at once.
        await Task {
            local.tracked = counter.make()
            local.discard(key: TaskID.current!)
            #expect(counter.count == 2)
        }.value
    }
}
