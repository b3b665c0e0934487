import Foundation
import Dispatch
import Locals
import Testing

@Suite("ThreadDiscriminator: one value per OS thread")
struct ThreadDiscriminatorTests {
    @Test("each thread has its own value and keeps it across calls")
    func perThreadValues() async {
        let local = Local(.thread) { Sample() }
        let threads = 8
        let allWritten = ThreadBarrier(threads)
        let results = Collector<Bool>()
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<threads {
                group.addTask {
                    results.append(await onNewThread { () -> Bool in
                        let first = local.id
                        local.id = i
                        // All threads are alive and have written before any reads on.
                        allWritten.arriveAndWait()
                        var ok = first == -1
                        for _ in 0..<2_000 where local.id != i { ok = false }
                        return ok
                    })
                }
            }
        }
        #expect(results.values == Array(repeating: true, count: threads))
    }

    @Test("200 sequential threads: a new thread never sees a dead thread's values")
    func sequentialThreads() async {
        let local = Local(.thread) { Sample() }
        var stale: [Int] = []
        for i in 0..<200 {
            let first = await onNewThread { () -> Int in
                let first = local.id
                local.id = i
                local.simple = "thread \(i)"
                return first
            }
            if first != -1 { stale.append(first) }
        }
        #expect(stale.count == 0, "new threads saw dead threads' values: \(stale.prefix(10))")
    }

    @Test("ThreadID is stable on a thread and never repeats on a later thread")
    func threadIDs() async {
        var seen: Set<ThreadID> = []
        for _ in 0..<50 {
            let (a, b, key) = await onNewThread {
                (ThreadID.current, ThreadID.current, ThreadDiscriminator().currentKey)
            }
            #expect(a == b)
            #expect(key == a)
            #expect(seen.insert(a).inserted)
        }
    }

    // A value discarded from another thread is dropped at once but released at its owner's next
    // touch (or exit): reads take no lock, so the owner could be reading it at that moment.
    @Test("discard(key:) with a live thread's ThreadID drops its value; it is released by the thread's next touch")
    func discardThreadKey() async throws {
        let counter = DeinitCounter()
        let calls = CallCounter()
        let local = Local(.thread) { calls.increment(); return Sample() }
        let written = Signal()
        let proceed = DispatchSemaphore(value: 0)
        defer { proceed.signal() }  // never leave the thread blocked, even if a check fails
        let thread = Box<ThreadID>()
        async let after = onNewThread { () -> (Int, Int) in
            local.id = 9
            local.tracked = counter.make()
            thread.value = ThreadID.current
            written.fire()
            proceed.wait()
            let id = local.id  // the owner's next touch: the value is gone, the initializer runs
            return (id, counter.count)
        }
        await written.wait()
        local.discard(key: try #require(thread.value))
        proceed.signal()
        let (id, releasedAtNextTouch) = await after
        #expect(id == -1)
        #expect(calls.count == 2)
        #expect(releasedAtNextTouch == 1, "the discarded value outlived the owner's next touch")
    }

    @Test("a task reading a .thread Local sees the value of the thread running that line")
    func threadLocalInTask() async {
        let local = Local(.thread) { Sample() }
        // Synchronously inside one task step nothing can move threads: write then read agree.
        let agree = await Task { () -> Bool in
            local.simple = "task wrote"
            return local.simple == "task wrote"
        }.value
        #expect(agree)
        // A fresh plain thread never sees it.
        #expect(await onNewThread { local.simple } == Sample.initial)
    }

    #if compiler(>=6.2)
    @Test("an async scope that ends on another thread leaves the starting thread's value for its next touch to release",
          .enabled(if: immediateTasksAvailable, "Task.immediate needs macOS 26 or later"))
    func migratedScopesReleasedAtNextTouch() async {
        let counter = DeinitCounter()
        let local = Local(.thread) { Sample() }
        // One long-lived plain thread starts each scope with Task.immediate; the scope's task
        // moves to the global pool at its first await and ends there, so the scope restores the
        // starting thread's value from elsewhere. That thread then reads, as servers do.
        let worst = await onNewThread { () -> Int in
            var worst = 0
            for i in 0..<300 {
                let ended = DispatchSemaphore(value: 0)
                immediateTask {
                    await local.withValues({ $0.tracked = counter.make(i) }) {
                        await Task.yield()
                    }
                    ended.signal()
                }
                ended.wait()
                _ = local.simple  // the starting thread's next touch
                worst = max(worst, i + 1 - counter.count)
            }
            return worst
        }
        #expect(worst <= 1, "up to \(worst) scoped values were held for the starting thread")
    }
    #endif
}
