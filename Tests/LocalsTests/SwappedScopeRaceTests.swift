import Foundation
import Locals
import Synchronization
import Testing

/// Counters shared between a scoping thread and a discarding thread.
private final class RaceCounters: Sendable {
    let started = Atomic<Int>(0)
    let done = Atomic<Int>(0)
    let stop = Atomic<Bool>(false)
    let iterations = Atomic<Int>(0)
    let discardsInside = Atomic<Int>(0)
    let cameBack = Atomic<Int>(0)
}

@Suite("Session and .thread scopes racing with discards, and their edges")
struct SwappedScopeRaceTests {
    // MARK: A discard at the scope's edges

    /// One thread sets "before", runs an empty scope and reads the value, over and over; another
    /// discards the key over and over. Whenever a discard started after the set and finished
    /// before the read, the key was dropped before the scope, inside it or after it: each leaves
    /// "initial". "before" could only come from the scope putting its saved value back over a
    /// discard it did not see, one that came just as it opened or just as it ended.
    @Test(
        "a discard racing with a session or .thread scope never brings back the value from before the scope",
        arguments: [true, false]
    )
    func discardRacingWithScope(session: Bool) async {
        let x = session ? Local(SessionDiscriminator()) { "initial" } : Local(ThreadDiscriminator()) { "initial" }
        let counters = RaceCounters()
        let scoper = Protected<ThreadID?>(nil)
        // Until enough discards landed inside an iteration (the defect showed within a few), or
        // the time runs out, on a machine busy with other tests. Both sides on threads of their
        // own, started directly: a task to start the discarder might wait behind other tests'
        // work until the scoping side had finished.
        let wanted = 500
        let deadline = Date().addingTimeInterval(30)
        let discarderRunning = DispatchSemaphore(value: 0)
        let discarderDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            discarderRunning.signal()
            while !counters.stop.load(ordering: .sequentiallyConsistent) {
                if session {
                    counters.started.add(1, ordering: .sequentiallyConsistent)
                    x.discard(key: "K")
                    counters.done.add(1, ordering: .sequentiallyConsistent)
                } else if let thread = scoper.withLock({ $0 }) {
                    counters.started.add(1, ordering: .sequentiallyConsistent)
                    x.discard(key: thread)
                    counters.done.add(1, ordering: .sequentiallyConsistent)
                }
            }
            discarderDone.signal()
        }
        await onNewThread {
            discarderRunning.wait()
            scoper.withLock { $0 = ThreadID.current }
            SessionDiscriminator.$session.withValue("K") {
                var i = 0
                while counters.cameBack.load(ordering: .relaxed) == 0,
                    counters.discardsInside.load(ordering: .relaxed) < wanted, i % 256 != 0 || Date() < deadline
                {
                    i += 1
                    x.value = "before"
                    let s0 = counters.started.load(ordering: .sequentiallyConsistent)
                    x.withValue(\.self, "scoped") {}
                    let d1 = counters.done.load(ordering: .sequentiallyConsistent)
                    let after = x.value
                    if d1 > s0 {
                        counters.discardsInside.add(1, ordering: .relaxed)
                        if after == "before" {
                            counters.cameBack.add(1, ordering: .relaxed)
                        }
                    }
                }
                counters.iterations.store(i, ordering: .relaxed)
            }
            counters.stop.store(true, ordering: .sequentiallyConsistent)
            discarderDone.wait()
        }
        #expect(counters.discardsInside.load(ordering: .relaxed) > 0, "no discard landed inside an iteration")
        #expect(
            counters.cameBack.load(ordering: .relaxed) == 0,
            """
            \(counters.cameBack.load(ordering: .relaxed)) time(s) (in \(counters.iterations.load(ordering: .relaxed)) \
            iterations, \(counters.discardsInside.load(ordering: .relaxed)) with a discard inside) the value from \
            before the scope came back over a discard
            """
        )
    }

    /// The closing edge of the test above, made deterministic for a session: the key's
    /// `hash(into:)` (user code) runs as the scope's end looks the session up to put its value
    /// back, and discards the session there. What the end put back is taken out again.
    @Test("a session discarded as its scope ends stays discarded")
    func discardAsScopeEnds() {
        let x = Local(HookKeyDiscriminator()) { "initial" }
        let key = HookKey(name: "K")
        let (inside, after) = HookKeyDiscriminator.$key.withValue(key) { () -> (String, String) in
            x.value = "before"
            var inside = ""
            x.withValues({ value in
                value += " scoped"
                HookKey.hook.withLock { $0 = { x.discard(key: key) } }  // fires at the next hash of the key
            }) {
                inside = x.value
            }
            return (inside, x.value)
        }
        #expect(inside == "before scoped")
        #expect(after == "initial")
    }

    // MARK: An async .thread scope that ends on another thread

    /// A value reset inside a scope and not touched again gets the value from before the scope
    /// back, as one touched again does, also when the scope is an async one that ends on another
    /// thread than it started on.
    @Test("an async .thread scope ending on another thread undoes a reset alone like a reset and a touch")
    func asyncThreadScopeEndingElsewhereUndoesReset() async {
        let executor = AlternatingExecutor()
        defer { executor.stop() }
        var results: [Bool: String] = [:]
        for touch in [true, false] {
            // Until the scope ends on the other thread: the hop is the executor's, and a busy
            // machine (a sanitizer) has been seen to resume the task where it was.
            var hopped = false
            for _ in 0..<20 where !hopped {
                let x = Local(ThreadDiscriminator()) { "initial" }
                executor.send(to: 0)
                let (start, end) = await Task(executorPreference: executor) { () async -> (ThreadID, ThreadID) in
                    x.value = "before"
                    let start = ThreadID.current
                    await x.withValue(\.self, "scoped") {
                        x.reset()
                        if touch { x.value += " touched" }
                        executor.send(to: 1)
                        try? await Task.sleep(nanoseconds: 1_000_000)  // resumes on the executor's other thread
                    }
                    return (start, ThreadID.current)
                }.value
                guard start != end else { continue }
                hopped = true
                for index in 0..<2 {
                    let (thread, value) = await executor.run(onThread: index) { (ThreadID.current, x.value) }
                    if thread == start { results[touch] = value }
                }
            }
            #expect(hopped, "the scope never ended on another thread than it started on: the test shows nothing")
        }
        #expect(results[true] == "before", "after a reset and a touch")
        #expect(results[false] == "before", "after a reset alone")
    }

    // MARK: A key that is not equal to itself

    #if compiler(>=6.2)
    /// A session key of type Double whose value is NaN is not equal to itself, so no table finds
    /// what was noted under it: a scope on it runs (each touch makes a session of its own) rather
    /// than stop the program.
    @Test("a scope on a session whose key is NaN does not stop the program")
    func nanKeyScope() async {
        await #expect(processExitsWith: .success) {
            let x = Local(DoubleDiscriminator()) { "initial" }
            DoubleDiscriminator.$key.withValue(.nan) {
                x.withValue(\.self, "scoped") {}
            }
        }
    }
    #endif
}
