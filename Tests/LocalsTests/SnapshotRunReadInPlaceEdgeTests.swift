import Dispatch
import Foundation
import Locals
import Testing

// Edge cases of reads served from a captured scope in place inside a synchronous
// `LocalsSnapshot.run`: each compares with what the run's view would read.

private struct EdgeValue: Sendable {
    var x = 0
}

/// Locals a computed property reads while a read of another Local is under way.
private let edgeOthers = (0..<10).map { index in Local { index } }

/// A snapshot that a computed property runs, nested, while a read is under way.
private let edgeNested = Protected<LocalsSnapshot?>(nil)

private struct EdgeReentrant: Sendable {
    var x = 0
    /// Reads every Local of `edgeOthers`, then runs `edgeNested` and reads them all again in it.
    var total: Int {
        var sum = x
        for local in edgeOthers { sum += local.value }
        if let nested = edgeNested.withLock({ $0 }) {
            nested.run {
                for local in edgeOthers { sum += local.value }
            }
        }
        return sum
    }
}

private struct EdgeSumming: Sendable {
    var x = 0
    /// Reads every Local of `edgeOthers`.
    var total: Int { edgeOthers.reduce(x) { $0 + $1.value } }
}

/// A value whose release reads a Local (user code while a run takes its views away).
private final class EdgeTracker: Sendable {
    let onDeinit: @Sendable () -> Void
    init(_ onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
    deinit { onDeinit() }
}

private struct EdgeHolder: Sendable {
    var x = 0
    var tracker: EdgeTracker?
}

@Suite("Reads in place inside a synchronous run: edge cases")
struct SnapshotRunReadInPlaceEdgeTests {
    /// A `.copy` scope that closes on another thread while runs read it: each run's reads agree
    /// with each other (a copy at the first read, or the closed scope's final value), and every
    /// value is one the owner wrote. Under TSan: the unlocked read of a closed scope.
    @Test("a .copy scope closing while runs elsewhere read it")
    func copyScopeClosingRace() async {
        let local = Local { EdgeValue() }
        let latest = Protected<LocalsSnapshot?>(nil)
        let stop = Protected(false)
        let bad = Protected<[String]>([])
        let runner = Thread {
            var runs = 0
            while !stop.withLock({ $0 }) || runs < 2_000 {
                guard let snapshot = latest.withLock({ $0 }) else { continue }
                snapshot.run {
                    let a = local.x
                    let b = local.value.x
                    let c = local.x
                    if a != b || b != c || a % 1_000 != 1 && a % 1_000 != 2 {
                        bad.withLock { $0.append("\(a) \(b) \(c)") }
                    }
                }
                runs += 1
            }
        }
        runner.start()
        // The owner on a thread of its own: 3,000 rounds on a pool thread would hold up other
        // tests' tasks for as long as they take.
        await onNewThread {
            for round in 1...3_000 {
                local.withValue(\.x, round * 1_000 + 1, inheritance: .copy) {
                    let snapshot = LocalsSnapshot.capture()
                    latest.withLock { $0 = snapshot }
                    local.x = round * 1_000 + 2
                }
            }
        }
        stop.withLock { $0 = true }
        while !runner.isFinished { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(bad.withLock { $0 } == [])
    }

    /// A computed property read through a run's cell in place that reads many other Locals and
    /// runs another snapshot, nested, reading them again: the read's cell and frame must outlive
    /// it (ASan), and every read sees the captured values.
    @Test("a read in place whose key path reads many Locals and nests a run")
    func reentrantGetter() async {
        let locals = (0..<10).map { _ in Local { EdgeReentrant() } }
        let (outer, inner) = await Task.detached { () -> (LocalsSnapshot, LocalsSnapshot) in
            func nest(_ index: Int, _ body: () -> LocalsSnapshot) -> LocalsSnapshot {
                guard index < edgeOthers.count else { return body() }
                return edgeOthers[index].withValue(\.self, 100 * (index + 1)) { nest(index + 1, body) }
            }
            let inner = nest(0) { LocalsSnapshot.capture() }
            func outerNest(_ index: Int) -> LocalsSnapshot {
                guard index < locals.count else { return LocalsSnapshot.capture() }
                return locals[index].withValue(\.x, index + 1) { outerNest(index + 1) }
            }
            return (outerNest(0), inner)
        }.value
        edgeNested.withLock { $0 = inner }
        defer { edgeNested.withLock { $0 = nil } }
        let totals = await onNewThread { () -> [Int] in
            var totals: [Int] = []
            for _ in 0..<20 {
                outer.run {
                    for local in locals { totals.append(local.total) }
                    for local in locals.reversed() { totals.append(local.total) }
                }
            }
            return totals
        }
        // edgeOthers read 0...9 outside the nested run (not in the outer snapshot) and 100...1000
        // inside it.
        let others = (0..<10).reduce(0, +) + (1...10).reduce(0) { $0 + 100 * $1 }
        let once = (1...10).map { $0 + others } + (1...10).reversed().map { $0 + others }
        #expect(totals == Array(repeating: once, count: 20).flatMap { $0 })
    }

    /// A snapshot captured inside a run that has only read in place, run nested, on another
    /// thread, and after the run: each reads what the run read.
    @Test("a snapshot captured inside a run after reads in place", arguments: [Inheritance.copy, .shared])
    func captureAfterPeeks(policy: Inheritance) async {
        let local = Local { EdgeValue() }
        let snapshot = await Task.detached {
            local.withValue(\.x, 1, inheritance: policy) { LocalsSnapshot.capture() }
        }.value
        let (seen, inner) = await onNewThread { () -> ([Int], LocalsSnapshot) in
            local.x = 9  // the runner's own value outside the run
            var seen: [Int] = []
            var inner = LocalsSnapshot()
            snapshot.run {
                seen.append(local.x)
                inner = LocalsSnapshot.capture()
                seen.append(local.x)
                inner.run { seen.append(local.x) }
            }
            inner.run { seen.append(local.x) }
            seen.append(local.x)
            return (seen, inner)
        }
        #expect(seen == [1, 1, 1, 1, 9])
        let elsewhere = await onNewThread { () -> Int in
            var x = -1
            inner.run { x = local.x }
            return x
        }
        #expect(elsewhere == 1)
        let inTask = await Task.detached { () -> Int in
            var x = -1
            inner.run { x = local.x }
            return x
        }.value
        #expect(inTask == 1)
    }

    /// The same, with a runner that never touched the Local (no cell of its own): the inner
    /// snapshot must still carry the captured value, and a write inside the inner run is its own.
    @Test("a snapshot captured inside a run by a context with no cell")
    func captureAfterPeeksNoCell() async {
        let local = Local { EdgeValue() }
        let snapshot = await Task.detached { local.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            var inner = LocalsSnapshot()
            snapshot.run {
                seen.append(local.x)
                inner = LocalsSnapshot.capture()
            }
            inner.run {
                seen.append(local.x)
                local.x = 3
                seen.append(local.x)
            }
            inner.run { seen.append(local.x) }
            seen.append(local.x)
            return seen
        }
        #expect(seen == [1, 1, 3, 1, 0])
    }

    /// `.fresh` and `.overlay` scopes: never read in place; a `.fresh` one reads the initial
    /// value, an `.overlay` one reads through to the live value (the owner's later write).
    @Test("fresh and overlay scopes inside a run")
    func freshAndOverlay() async {
        let fresh = Local { EdgeValue(x: -1) }
        let overlay = Local { EdgeValue(x: -1) }
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            fresh.withValue(\.x, 1, inheritance: .fresh) {
                overlay.withValue(\.x, 1, inheritance: .overlay) { LocalsSnapshot.capture() }
            }
        }.value
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            snapshot.run {
                seen.append(fresh.x)
                seen.append(overlay.x)
                seen.append(fresh.value.x)
                seen.append(overlay.value.x)
            }
            return seen
        }
        #expect(seen == [-1, 1, -1, 1])
    }

    /// `discard(key:)` and `reset()` of the runner's own key between reads in place.
    @Test("discard and reset of the runner's key between reads in place")
    func discardBetweenPeeks() async {
        let local = Local { EdgeValue(x: -1) }
        let snapshot = await Task.detached { local.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let seen = await Task.detached { () -> [Int] in
            local.x = 9
            var seen: [Int] = []
            let me = TaskID.current!
            snapshot.run {
                seen.append(local.x)
                local.discard(key: me)
                seen.append(local.x)
                local.x = 4
                seen.append(local.x)
                local.discard(key: me)
                seen.append(local.x)
            }
            seen.append(local.x)
            snapshot.run {
                seen.append(local.x)
                local.reset()
                seen.append(local.x)
            }
            seen.append(local.x)
            return seen
        }.value
        #expect(seen == [1, 1, 4, 1, -1, 1, -1, -1])
    }

    /// A task started with `Task.immediate` inside a run (on the runner's thread, as another
    /// task) reads the captured scope as a child created inside the run does, and the runner's
    /// reads around it are in place.
    @Test("Task.immediate inside a run")
    func immediateInsideRun() async throws {
        #if compiler(>=6.2)
        guard immediateTasksAvailable else { return }
        let local = Local { EdgeValue(x: -1) }
        let snapshot = await Task.detached { local.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let seen = Protected<[Int]>([])
        let tasks = Protected<[Task<Void, Never>]>([])
        await onNewThread {
            snapshot.run {
                seen.withLock { $0.append(local.x) }
                let task = immediateTask {
                    seen.withLock { $0.append(local.x) }
                    // a run of the child's own, nested in the thread's
                    snapshot.run { seen.withLock { $0.append(local.x) } }
                    await Task.yield()
                    seen.withLock { $0.append(local.x) }
                }
                tasks.withLock { $0.append(task) }
                seen.withLock { $0.append(local.x) }
            }
        }
        for task in tasks.withLock({ $0 }) { await task.value }
        #expect(seen.withLock { $0 } == [1, 1, 1, 1, 1])
        #endif
    }

    /// Another Local's initializer reads a Local in place inside the run.
    @Test("an initializer that reads a Local in place")
    func initializerReads() async {
        let source = Local { EdgeValue(x: -1) }
        let derived = Local { source.x * 10 }
        let snapshot = await Task.detached { source.withValue(\.x, 2) { LocalsSnapshot.capture() } }.value
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            snapshot.run {
                seen.append(derived.value)
                seen.append(source.x)
            }
            return seen
        }
        #expect(seen == [20, 2])
    }

    /// Values whose deinit reads Locals, released while a run takes its views away, with other
    /// Locals read in place in the same run: a Local the run read in place still reads so, as
    /// its view would if it had one not taken away yet.
    @Test("a deinit that reads Locals while a run ends")
    func deinitWhileEnding() async {
        let reader = Local { EdgeValue(x: -1) }
        let holder = Local { EdgeHolder() }
        let seenInDeinit = Protected<[Int]>([])
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            reader.withValue(\.x, 1) {
                holder.withValue(\.x, 1) { LocalsSnapshot.capture() }
            }
        }.value
        let seen = await onNewThread { () -> [Int] in
            reader.x = 9
            var seen: [Int] = []
            snapshot.run {
                seen.append(reader.x)
                holder.tracker = EdgeTracker { seenInDeinit.withLock { $0.append(reader.x) } }
                seen.append(reader.x)
            }
            seen.append(reader.x)
            return seen
        }
        #expect(seen == [1, 1, 9])
        #expect(seenInDeinit.withLock { $0 } == [1])
    }

    /// A deinit that runs while a nested run takes its views away, still inside the outer run,
    /// reads a Local the outer run has already read in place: it sees the outer run's value, as
    /// it would through the outer run's view, not the value the context has outside both runs.
    @Test("a deinit while a nested run ends reads a Local the outer run read")
    func deinitWhileNestedRunEnds() async {
        let reader = Local { EdgeValue(x: -1) }
        let holder = Local { EdgeHolder() }
        let seenInDeinit = Protected<[Int]>([])
        let snapshot = await Task.detached { reader.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let seen = await onNewThread { () -> [Int] in
            reader.x = 9  // outside both runs
            var seen: [Int] = []
            snapshot.run {
                seen.append(reader.x)  // the outer run's value
                LocalsSnapshot().run {
                    holder.tracker = EdgeTracker { seenInDeinit.withLock { $0.append(reader.x) } }
                }
                // the nested run is over: still inside the outer one
                seen.append(reader.x)
            }
            return seen
        }
        #expect(seen == [1, 1])
        #expect(seenInDeinit.withLock { $0 } == [1])
    }

    /// What a deinit at the end of a run sees of a Local the run read does not depend on how
    /// many other Locals the run read first: under `ActiveRun.maxPeeks` reads, the read is served
    /// in place, past them it puts the view in place. Both runs read the same Local once.
    @Test("a deinit at a run's end sees the same of a Local read, however many reads came first")
    func deinitDependsOnPeekCount() async {
        let reader = Local { EdgeValue(x: -1) }
        let holder = Local { EdgeHolder() }
        let fillers = (0..<8).map { _ in Local { EdgeValue() } }
        let seenInDeinit = Protected<[Int]>([])
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            func nest(_ index: Int) -> LocalsSnapshot {
                guard index < fillers.count else {
                    return reader.withValue(\.x, 1) { LocalsSnapshot.capture() }
                }
                return fillers[index].withValue(\.x, index) { nest(index + 1) }
            }
            return nest(0)
        }.value
        await onNewThread {
            reader.x = 9  // outside the run
            for fillFirst in [false, true] {
                snapshot.run {
                    if fillFirst {
                        for filler in fillers { _ = filler.x }
                    }
                    _ = reader.x
                    holder.tracker = EdgeTracker { seenInDeinit.withLock { $0.append(reader.x) } }
                }
            }
        }
        let seen = seenInDeinit.withLock { $0 }
        #expect(seen.count == 2)
        #expect(seen.first == seen.last, "the deinit saw \(seen)")
    }

    /// A snapshot captured inside a run (after reads in place only, so its chain goes through the
    /// run's boundary) and run on another thread, which reads through that boundary, then lets
    /// go of it; the capturing thread's run then ends, and its boundary is recycled for the next
    /// run there. Under TSan: the reads through the boundary against its reuse.
    @Test("a boundary read through by another thread's run, then recycled")
    func boundaryReadThenRecycled() async {
        let local = Local { EdgeValue(x: -1) }
        let snapshot = await Task.detached { local.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let box = Protected<LocalsSnapshot?>(nil)
        let taken = Protected(0)
        let bad = Protected(0)
        let rounds = 300
        let reader = Thread {
            var done = 0
            while done < rounds {
                guard let inner = box.withLock({ $0.take() }) else { continue }
                taken.withLock { $0 += 1 }
                inner.run { if local.x != 1 { bad.withLock { $0 += 1 } } }
                done += 1
                // `inner` goes here, with no lock after
            }
        }
        reader.start()
        await onNewThread {
            for round in 0..<rounds {
                snapshot.run {
                    _ = local.x
                    box.withLock { $0 = LocalsSnapshot.capture() }
                    while taken.withLock({ $0 }) <= round {}
                }
            }
        }
        while !reader.isFinished { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(bad.withLock { $0 } == 0)
    }

    /// Many runs on one thread, each reading in place a different mix of more Locals than a run
    /// keeps cells for, some through a computed property that reads others while the read is
    /// under way (the kept cells are replaced meanwhile). ASan: no read through a released cell.
    @Test("eviction of the run's cells while reads are under way")
    func evictionUnderRead() async {
        let locals = (0..<24).map { _ in Local { EdgeSumming() } }
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            func nest(_ index: Int) -> LocalsSnapshot {
                guard index < locals.count else {
                    func others(_ i: Int) -> LocalsSnapshot {
                        guard i < edgeOthers.count else { return LocalsSnapshot.capture() }
                        return edgeOthers[i].withValue(\.self, 1_000) { others(i + 1) }
                    }
                    return others(0)
                }
                return locals[index].withValue(\.x, index, inheritance: index % 2 == 0 ? .copy : .shared) {
                    nest(index + 1)
                }
            }
            return nest(0)
        }.value
        let ok = await onNewThread { () -> Bool in
            var ok = true
            var rng = SystemRandomNumberGenerator()
            for round in 0..<2_000 {
                snapshot.run {
                    let start = Int.random(in: 0..<locals.count, using: &rng)
                    for step in 0..<(round % 5 + 1) {
                        let index = (start + step * 7) % locals.count
                        if step % 2 == 0 {
                            ok = ok && locals[index].total == index + 10_000
                        } else {
                            ok = ok && locals[index].x == index
                        }
                    }
                }
            }
            return ok
        }
        #expect(ok)
    }

    /// A `.shared` scope read in place, and written by the run afterwards: the write goes to the
    /// shared scope (as the view's redirect does), which the owner sees.
    @Test("a write after a read in place of a .shared scope")
    func sharedWriteAfterPeek() async {
        let local = Local { EdgeValue(x: -1) }
        let result = await Task.detached { () -> [Int] in
            local.withValue(\.x, 1, inheritance: .shared) { () -> [Int] in
                let snapshot = LocalsSnapshot.capture()
                let inRun = Thread.detachAndWait {
                    var seen: [Int] = []
                    snapshot.run {
                        seen.append(local.x)
                        local.x = 5
                        seen.append(local.x)
                    }
                    return seen
                }
                return inRun + [local.x]
            }
        }.value
        #expect(result == [1, 5, 5])
    }
}

extension Thread {
    /// Runs `body` on a new thread and waits for its result (blocking the caller).
    static func detachAndWait<T: Sendable>(_ body: @escaping @Sendable () -> T) -> T {
        let done = DispatchSemaphore(value: 0)
        let result = Protected<T?>(nil)
        Thread.detachNewThread {
            result.withLock { $0 = body() }
            done.signal()
        }
        done.wait()
        return result.withLock { $0 }!
    }
}
