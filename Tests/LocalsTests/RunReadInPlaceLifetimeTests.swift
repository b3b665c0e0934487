import Dispatch
import Foundation
import Locals
import Testing

// A read served in place inside a synchronous run goes through the
// run's kept cell with no retain. Each test runs user code (a computed property reached through a
// key path, or a deinit) while such a read is under way, and has that user code do what could
// make the run drop or replace the cell: reads of many other Locals (keeps that evict), a re-read
// of the same Local (which re-points the kept cell: a write into it), nested runs (which recycle
// the thread's spare `ActiveRun`), writes, resets, discards, captures, `Task.immediate`. Under
// Address Sanitizer a cell or frame released too early shows as a use after free; the values
// check that each read sees the captured scope.

private final class PeekPayload: Sendable {
    let n: Int
    init(_ n: Int) { self.n = n }
}

private struct PeekProbe: Sendable {
    var x = 0
    var payload = PeekPayload(0)
    var hook: @Sendable (Int) -> Int = { $0 }
    /// Runs the hook (user code while the read is under way), then reads `payload` from the same
    /// value: the frame the read goes through must still be there.
    var busy: Int { hook(x) + payload.n }
}

private final class PeekTracker: Sendable {
    let onDeinit: @Sendable () -> Void
    init(_ onDeinit: @escaping @Sendable () -> Void) { self.onDeinit = onDeinit }
    deinit { onDeinit() }
}

private struct PeekHolder: Sendable {
    var tracker: PeekTracker?
}

@Suite("A read in place inside a run: the run's cell outlives the read")
struct RunReadInPlaceLifetimeTests {
    /// Fillers scoped to 100 + i, and `probe` scoped to x = 7, payload 1000, with `hook`.
    private static func capture(
        _ fillers: [Local<Int>], _ probe: Local<PeekProbe>, hook: @escaping @Sendable (Int) -> Int
    ) async -> LocalsSnapshot {
        await Task.detached { () -> LocalsSnapshot in
            func nest(_ index: Int) -> LocalsSnapshot {
                guard index < fillers.count else {
                    return probe.withValues({ value in
                        value.x = 7
                        value.payload = PeekPayload(1_000)
                        value.hook = hook
                    }) { LocalsSnapshot.capture() }
                }
                return fillers[index].withValue(\.self, 100 + index) { nest(index + 1) }
            }
            return nest(0)
        }.value
    }

    /// The run's table is full of cells from an earlier run; the read of `probe` evicts one, and
    /// its getter reads five more Locals in place (five more evictions), re-reads `probe` (through
    /// the kept cell, re-pointed: a write into it), then reads past `maxPeeks` (views).
    @Test("a getter whose reads evict the run's other cells, then re-reads the same Local")
    func evictionsThenReread() async {
        let fillers = (0..<20).map { index in Local { -index } }
        let probe = Local { PeekProbe(x: -1) }
        let snapshot = await Self.capture(fillers, probe) { x in
            var sum = x
            for filler in fillers[8..<13] { sum += filler.value }  // in place: evicts
            sum += probe.x  // the kept cell again
            for filler in fillers[13..<20] { sum += filler.value }  // past maxPeeks: views
            sum += probe.payload.n
            return sum
        }
        let expected = 7 + (8..<20).reduce(0) { $0 + 100 + $1 } + 7 + 1_000 + 1_000
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            for _ in 0..<300 {
                snapshot.run { for filler in fillers[0..<8] { _ = filler.value } }
                snapshot.run { seen.append(probe.busy) }
                snapshot.run { for filler in fillers[12..<20] { _ = filler.value } }
                snapshot.run { seen.append(probe.busy) }
            }
            return seen
        }
        #expect(seen == Array(repeating: expected, count: 600))
    }

    /// The getter runs the same snapshot nested, three times in a row (the second and third reuse
    /// the thread's spare run, with new stamps, evicting in its own table), each reading every
    /// filler and `probe`; then re-reads `probe` in the outer run.
    @Test("a getter that nests runs which recycle the thread's spare run")
    func nestedRunsRecycle() async {
        let fillers = (0..<12).map { index in Local { -index } }
        let probe = Local { PeekProbe(x: -1) }
        let box = Protected<LocalsSnapshot?>(nil)
        let depth = Protected(0)
        let snapshot = await Self.capture(fillers, probe) { x in
            let level = depth.withLock { $0 += 1; return $0 }
            defer { depth.withLock { $0 -= 1 } }
            guard level == 1, let nested = box.withLock({ $0 }) else { return x }
            var sum = x
            for _ in 0..<3 {
                nested.run {
                    for filler in fillers { sum += filler.value }
                    sum += probe.x + probe.busy  // a nested read in place, its getter at level 2
                }
            }
            sum += probe.x  // the outer run's kept cell
            return sum
        }
        box.withLock { $0 = snapshot }
        defer { box.withLock { $0 = nil } }
        let inner = (0..<12).reduce(0) { $0 + 100 + $1 } + 7 + (7 + 1_000)
        let expected = 7 + 3 * inner + 7 + 1_000
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            for _ in 0..<200 {
                snapshot.run {
                    for filler in fillers[0..<4] { _ = filler.value }
                    seen.append(probe.busy)
                }
            }
            return seen
        }
        #expect(seen == Array(repeating: expected, count: 200))
    }

    /// A deinit while the run takes its views away reads `probe` in place (the ending path), and
    /// the getter reads many Locals, nests runs, and re-reads `probe`.
    @Test("a getter reached from a deinit while the run ends")
    func getterInDeinitWhileEnding() async {
        let fillers = (0..<12).map { index in Local { -index } }
        let probe = Local { PeekProbe(x: -1) }
        let holder = Local { PeekHolder() }
        let box = Protected<LocalsSnapshot?>(nil)
        let inDeinit = Protected<[Int]>([])
        let snapshot = await Self.capture(fillers, probe) { x in
            var sum = x
            for filler in fillers { sum += filler.value }
            box.withLock { $0 }?.run {
                for filler in fillers { sum += filler.value }
                sum += probe.x
            }
            LocalsSnapshot().run { sum += probe.x }
            sum += probe.x
            return sum
        }
        box.withLock { $0 = snapshot }
        defer { box.withLock { $0 = nil } }
        let count = await onNewThread { () -> Int in
            for _ in 0..<200 {
                snapshot.run {
                    _ = probe.x  // read in place: kept for the ending
                    holder.tracker = PeekTracker { inDeinit.withLock { $0.append(probe.busy) } }
                }
            }
            return 200
        }
        let seen = inDeinit.withLock { $0 }
        #expect(seen.count == count)
        #expect(Set(seen).count == 1, "deinits saw \(Set(seen))")
    }

    /// The getter writes, resets and discards this Local and others, captures a snapshot and runs
    /// it, and re-reads, while the read in place is under way.
    @Test("a getter that writes, resets, discards and captures")
    func getterMutates() async {
        let fillers = (0..<6).map { index in Local { -index } }
        let probe = Local { PeekProbe(x: -1) }
        let snapshot = await Self.capture(fillers, probe) { x in
            var sum = x
            sum += fillers[0].value
            fillers[0].value = 5
            fillers[1].reset()
            if let me = TaskID.current { probe.discard(key: me) } else { probe.reset() }
            probe.reset()
            let inner = LocalsSnapshot.capture()
            inner.run {
                sum += probe.x
                sum += fillers[0].value
            }
            fillers[2].value = 11  // a view now
            sum += fillers[2].value
            sum += probe.payload.n
            return sum
        }
        let seen = await Task.detached { () -> [Int] in
            var seen: [Int] = []
            for _ in 0..<200 {
                snapshot.run { seen.append(probe.busy) }
            }
            return seen
        }.value
        #expect(seen.count == 200)
        #expect(Set(seen).count == 1, "reads saw \(Set(seen)) first \(seen.prefix(3))")
    }

    /// The getter starts a task with `Task.immediate` (on this thread, as another task), which
    /// runs the snapshot itself and reads `probe`, then the getter re-reads `probe`.
    @Test("a getter that starts an immediate task running the snapshot")
    func getterImmediateTask() async throws {
        #if compiler(>=6.2)
        guard immediateTasksAvailable else { return }
        let fillers = (0..<10).map { index in Local { -index } }
        let probe = Local { PeekProbe(x: -1) }
        let box = Protected<LocalsSnapshot?>(nil)
        let tasks = Protected<[Task<Int, Never>]>([])
        let snapshot = await Self.capture(fillers, probe) { x in
            guard let nested = box.withLock({ $0 }) else { return x }
            let task = immediateTask { () -> Int in
                var sum = 0
                nested.run {
                    for filler in fillers { sum += filler.value }
                    sum += probe.x
                }
                await Task.yield()
                return sum
            }
            tasks.withLock { $0.append(task) }
            return x + probe.x
        }
        box.withLock { $0 = snapshot }
        defer { box.withLock { $0 = nil } }
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            for _ in 0..<100 {
                snapshot.run { seen.append(probe.busy) }
            }
            return seen
        }
        #expect(seen == Array(repeating: 7 + 7 + 1_000, count: 100))
        for task in tasks.withLock({ $0 }) {
            #expect(await task.value == (0..<10).reduce(0) { $0 + 100 + $1 } + 7)
        }
        #endif
    }
}
