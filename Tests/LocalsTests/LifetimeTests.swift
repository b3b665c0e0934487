@testable import Locals
import Testing

/// Release is lazy (see the Lifetimes and Guarantees article): a finished task's value must be
/// deinitialized by the time as many new tasks again have touched the same Local. Each test stores
/// a tracked object from a first batch of tasks, runs a second batch of the same size that touches
/// the Local, and then checks that every object of the first batch was deinitialized.
@Suite("Lifetimes: values of finished tasks and exited threads are released")
struct LifetimeTests {
    @Test("discarding the keys of tasks that already ended releases their values, with no other touches",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func discardEndedTasksReleases() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let tasks = 2_000
        for i in 0..<tasks {
            let id = await Task { () -> TaskID in
                local.tracked = counter.make(i)
                return TaskID.current!
            }.value
            local.discard(key: id)
        }
        // Released at once when the task has ended, or by a sweep that the parked cells
        // themselves trigger: at most two sweeps' worth (64 each, the minimum) may still be held.
        #expect(counter.count >= tasks - 128, "released \(counter.count) of \(tasks)")
    }

    static let batch = 2_000

    /// The second batch: `count` new tasks, one after another, each touching the Local.
    static func touchSequentially(_ local: Local<Sample>, _ count: Int = batch) async {
        for _ in 0..<count {
            await Task { local.count += 1 }.value
        }
    }

    /// The second batch: `count` new tasks alive at the same time, each touching the Local.
    static func touchConcurrently(_ local: Local<Sample>, _ count: Int = batch) async {
        let alive = Latch(count)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<count {
                group.addTask {
                    local.count += 1
                    await alive.arriveAndWait()
                }
            }
        }
    }

    @Test("values of sequential finished tasks are released",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func sequentialTasksReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        for i in 0..<Self.batch {
            await Task { local.tracked = counter.make(i) }.value
        }
        await Self.touchSequentially(local)
        #expect(counter.count == Self.batch)
    }

    @Test("values are released when every task touches two Locals",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func twoLocalsReleased() async {
        let counter = DeinitCounter()
        let first = Local { Sample() }
        let second = Local { Sample() }
        for i in 0..<Self.batch {
            await Task {
                first.tracked = counter.make(i)
                second.tracked = counter.make(i)
            }.value
        }
        for _ in 0..<Self.batch {
            await Task {
                first.count += 1
                second.count += 1
            }.value
        }
        #expect(counter.count == 2 * Self.batch,
                "\(2 * Self.batch - counter.count) finished tasks' values were not released")
    }

    @Test("values of tasks that ran at the same time are released after as many new tasks touched",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"),
          arguments: ["sequential second batch", "concurrent second batch"])
    func concurrentTasksReleased(secondBatch: String) async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let alive = Latch(Self.batch)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<Self.batch {
                group.addTask {
                    local.tracked = counter.make(i)
                    await alive.arriveAndWait()  // all first-batch tasks overlap
                }
            }
        }
        if secondBatch == "sequential second batch" {
            await Self.touchSequentially(local)
        } else {
            await Self.touchConcurrently(local)
        }
        #expect(counter.count == Self.batch, "\(Self.batch - counter.count) finished tasks' values were not released")
    }

    @Test("values of fire-and-forget and detached tasks are released after they end",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func droppedHandlesReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let done = Latch(Self.batch)
        for i in 0..<Self.batch {
            if i.isMultiple(of: 2) {
                Task { local.tracked = counter.make(i); done.arrive() }
            } else {
                Task.detached { local.tracked = counter.make(i); done.arrive() }
            }
        }
        await done.wait()
        await Self.touchConcurrently(local)
        #expect(counter.count == Self.batch)
    }

    @Test("values of async let children are released after they end",
          .enabled(if: findsAsyncLetParents, "the fallback releases on address reuse: see the fallback tests"))
    func asyncLetChildrenReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let parents = 500
        let alive = Latch(parents)
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<parents {
                group.addTask {
                    async let child: Void = { local.tracked = counter.make(i) }()
                    await child
                    await alive.arriveAndWait()
                }
            }
        }
        await Self.touchConcurrently(local, parents)
        await Self.touchSequentially(local, parents)
        #expect(counter.count == parents, "\(parents - counter.count) async let children's values were not released")
    }

    @Test("values of cancelled tasks are released",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func cancelledTasksReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let count = 500
        let stored = Latch(count)
        var handles: [Task<Void, Never>] = []
        for i in 0..<count {
            handles.append(Task {
                local.tracked = counter.make(i)
                await stored.arriveAndWait()
                await waitUntilCancelled()
            })
        }
        await stored.wait()
        for handle in handles { handle.cancel() }
        for handle in handles { await handle.value }
        handles.removeAll()
        await Self.touchSequentially(local, count)
        #expect(counter.count == count)
    }

    @Test("a live task's value is not released while other tasks churn")
    func liveValueNotReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let stored = Signal()
        let finish = Signal()
        let task = Task { () -> Int? in
            local.tracked = counter.make(1)
            stored.fire()
            await finish.wait()
            return local.tracked?.tag
        }
        await stored.wait()
        await Self.touchConcurrently(local)
        await Self.touchSequentially(local)
        #expect(counter.count == 0)
        finish.fire()
        #expect(await task.value == 1)
    }

    @Test("a thread's values are released when it exits (.thread and the .task fallback)")
    func threadValuesReleasedAtExit() async {
        let counter = DeinitCounter()
        let perThread = Local(.thread) { Sample() }
        let perTask = Local { Sample() }
        let threads = 200
        for i in 0..<threads {
            await onNewThread {
                perThread.tracked = counter.make(i)
                perTask.tracked = counter.make(i)
            }
        }
        #expect(await counter.wait(untilAtLeast: 2 * threads), "released \(counter.count) of \(2 * threads)")
    }

    @Test("a value's deinit may touch the same and other Locals when released by reset")
    func deinitTouchesLocalsOnReset() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let other = Local { Sample() }
        await Task {
            local.tracked = Tracked(tag: 1, counter: counter) {
                other.count += 1
                local.simple = "written by deinit"
                _ = local.count
            }
            local.reset()
            #expect(counter.count == 1)
            #expect(other.count == 1)
            #expect(local.tracked == nil)
        }.value
    }

    @Test("a value's deinit may touch Locals when released lazily in another task",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func deinitTouchesLocalsOnSweep() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let other = Local { Sample() }
        for i in 0..<Self.batch {
            await Task {
                local.tracked = Tracked(tag: i, counter: counter) {
                    local.update { $0.count += 1 }
                    other.count += 1
                }
            }.value
        }
        await Self.touchSequentially(local)
        #expect(counter.count == Self.batch, "\(Self.batch - counter.count) values were not released")
    }

    @Test("a value's deinit may touch Locals when released at thread exit")
    func deinitTouchesLocalsAtThreadExit() async {
        let counter = DeinitCounter()
        let perThread = Local(.thread) { Sample() }
        let perTask = Local { Sample() }
        for i in 0..<20 {
            await onNewThread {
                perThread.tracked = Tracked(tag: i, counter: counter) {
                    perTask.count += 1
                    perThread.count += 1
                }
            }
        }
        #expect(await counter.wait(untilAtLeast: 20))
    }

    @Test("a value's deinit may touch the same session when released by discard")
    func deinitTouchesLocalsOnDiscard() {
        let counter = DeinitCounter()
        let local = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s") {
            local.tracked = Tracked(tag: 0, counter: counter) {
                SessionDiscriminator.$session.withValue("s") { local.simple = "reborn" }
            }
        }
        local.discard(key: "s")
        #expect(counter.count == 1)
        #expect(SessionDiscriminator.$session.withValue("s") { local.simple } == "reborn")
    }

    @Test("a scope's value is released as soon as the scope ends, when no child saw it")
    func scopeValueReleased() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        await local.withValues({ $0.tracked = counter.make() }) {
            #expect(local.tracked != nil)
            local.simple = "owner write"
            await Task.yield()
        }
        #expect(counter.count == 1)
        #expect(local.tracked == nil)
        local.withValues({ $0.tracked = counter.make() }) {
            local.withScope { local.simple = "nested" }
        }
        #expect(counter.count == 2)
    }

    @Test("a scope's value, copied by its children, is released once they end and new tasks touched")
    func scopeValueReleasedAfterChildren() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        await local.withValues({ $0.tracked = counter.make() }) {
            for _ in 0..<10 {
                await Task { #expect(local.tracked != nil) }.value
            }
        }
        await Self.touchSequentially(local, 100)
        await Self.touchConcurrently(local, 100)
        #expect(counter.count == 1)
    }

    @Test("a child's own value is released after the child ends", arguments: ChildKind.allCases)
    func childValueReleased(kind: ChildKind) async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let children = 300
        await local.withScope {
            for i in 0..<children {
                await inChild(kind) { local.tracked = counter.make(i) }
            }
            // As many new tasks again touch the Local, inside the same scope.
            for _ in 0..<children {
                await inChild(kind) { local.count += 1 }
            }
            for _ in 0..<children {
                await Task { local.count += 1 }.value
            }
            // Without a pin, a child's value is kept by the scope it inherited: released with it.
            if pinsTasks, kind != .asyncLet || findsAsyncLetParents {
                #expect(counter.count == children,
                        "\(children - counter.count) children's values not released inside the scope")
            }
        }
        #expect(await counter.wait(untilAtLeast: children), "released \(counter.count) of \(children) after the scope")
    }

    @Test("under .shared, a child's writes live in the scope's value until the last task using it ends")
    func sharedValueLivesWithScope() async {
        let counter = DeinitCounter()
        let local = Local(inheritance: .shared) { Sample() }
        let stored = Signal()
        let scopeEnded = Signal()
        var late: Task<Int?, Never>? = await local.withScope { () -> Task<Int?, Never> in
            let late = Task { () -> Int? in
                local.tracked = counter.make(7)
                stored.fire()
                await scopeEnded.wait()
                return local.tracked?.tag  // the scope ended, this task still uses its value
            }
            await stored.wait()
            #expect(local.tracked?.tag == 7)
            return late
        }
        #expect(counter.count == 0)
        scopeEnded.fire()
        #expect(await late?.value == 7)
        late = nil
        #expect(await counter.wait(untilAtLeast: 1))
    }

    // MARK: How much of ended tasks is held

    /// A task's result, whose deinit is counted: a pinned task object keeps its result.
    final class Result: Sendable {
        let tracked: Tracked
        init(_ tracked: Tracked) { self.tracked = tracked }
    }

    @Test("a steady sequential workload keeps at most 8 ended tasks, their values and their results",
          .enabled(if: pinsTasks, "without pins nothing keeps an ended task"))
    func steadyWorkloadHoldsAHandful() async {
        let values = DeinitCounter()
        let results = DeinitCounter()
        let local = Local { Sample() }
        var worst = (values: 0, results: 0)
        for i in 0..<1_000 {
            _ = await Task { () -> Result in
                local.tracked = values.make(i)
                return Result(results.make(i))
            }.value
            // Task i has ended and its handle is gone: held are the ended tasks not yet retired.
            worst.values = max(worst.values, i + 1 - values.count)
            worst.results = max(worst.results, i + 1 - results.count)
        }
        #expect(worst.values <= 8, "up to \(worst.values) ended tasks' values were held")
        #expect(worst.results <= 8, "up to \(worst.results) ended tasks' results were held")
    }

    @Test("nothing of a task is held once every Local it touched is released",
          .enabled(if: pinsTasks, "without pins nothing keeps an ended task"))
    func releasedLocalsHoldNothing() async {
        let values = DeinitCounter()
        let results = DeinitCounter()
        var first: Local<Sample>? = Local { Sample() }
        var second: Local<Sample>? = Local { Sample() }
        let tasks = 2_000
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<tasks {
                group.addTask { [first, second] in
                    _ = await Task { () -> Result in
                        first!.tracked = values.make(i)
                        second!.tracked = values.make(i)
                        return Result(results.make(i))
                    }.value
                }
            }
        }
        #expect(values.count < 2 * tasks || results.count < tasks, "every task was retired before the Locals went")
        first = nil
        second = nil
        // No other Local is touched: releasing the two must let every task go.
        #expect(values.count == 2 * tasks, "\(2 * tasks - values.count) values outlived their Locals")
        #expect(results.count == tasks, "\(tasks - results.count) task results outlived the Locals their tasks touched")
    }

    @Test("a burst's ended tasks are retired steadily by later first touches",
          .enabled(if: pinsTasks, "without pins nothing keeps an ended task"))
    func burstRetiredSteadily() async {
        let values = DeinitCounter()
        let local = Local { Sample() }
        let burst = 10_000
        await withDiscardingTaskGroup { group in
            for i in 0..<burst {
                group.addTask { local.tracked = values.make(i) }
            }
        }
        var held = [burst - values.count]
        for _ in 0..<6 {
            for _ in 0..<500 {
                await Task { local.count += 1 }.value
            }
            held.append(burst - values.count)
        }
        for (before, after) in zip(held, held.dropFirst()) {
            #expect(after < before || after == 0, "500 first touches retired nothing: \(held)")
        }
        #expect(held.last == 0, "ended tasks still held after 3,000 first touches: \(held)")
    }

    // MARK: Fallbacks, where the runtime gives no pin

    @Test("without task end detection, a finished task's value is released when a later task starts at its address",
          .enabled(if: !pinsTasks, "tasks are pinned on this runtime"),
          .disabled(if: runningUnderAddressSanitizer,
                    "Address Sanitizer quarantines freed memory: no address is reused"))
    func unpinnedReleasedOnAddressReuse() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        var addresses = Set<UInt>()
        for i in 0..<Self.batch {
            let id = await Task { () -> TaskID in
                local.tracked = counter.make(i)
                return TaskID.current!
            }.value
            addresses.insert(id.address)
        }
        // At most one value per address the tasks ran at is left.
        #expect(counter.count >= Self.batch - addresses.count, "released \(counter.count) of \(Self.batch)")
        #expect(counter.count > 0)
    }

    @Test("without an async let child's parent, its value is released with its scope, or at a reused address",
          .enabled(if: !findsAsyncLetParents, "async let parents are found on this runtime"))
    func asyncLetFallbackReleases() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let children = 300
        await local.withScope {
            for i in 0..<children {
                async let child: Void = { local.tracked = counter.make(i) }()
                await child
            }
        }
        #expect(await counter.wait(untilAtLeast: children), "released \(counter.count) of \(children) after the scope")
        // Outside any scope: one parent's async let children run at one address, one after another.
        for i in 0..<children {
            async let child: Void = { local.tracked = counter.make(i) }()
            await child
        }
        #expect(counter.count >= 2 * children - 1, "released \(counter.count - children) of \(children) outside scopes")
    }
}
