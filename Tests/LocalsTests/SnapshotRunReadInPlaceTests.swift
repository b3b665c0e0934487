import Dispatch
import Foundation
import Locals
import Testing

/// Other Locals that `Summing.total`, a computed property, reads: user code that runs while a
/// read of the Local that holds a `Summing` is under way.
private let addends = (0..<12).map { index in Local { index } }

/// A value whose computed property reads every Local of `addends`.
private struct Summing: Sendable {
    var x = 0
    var total: Int { addends.reduce(x) { $0 + $1.value } }
}

/// Inside a synchronous snapshot `run`, a read of a Local the running context has not touched in
/// the run yet is served from the captured scope in place, where that reads what the view the run
/// would otherwise put in place reads. These tests pin what the running context sees down, in
/// each case where in place and a view could differ.
@Suite("Reads inside a synchronous run, served from the captured scope")
struct SnapshotRunReadInPlaceTests {
    /// Runs `body` on a new thread, inside `snapshot.run`, after the owner has done `between`
    /// between the body's two halves: `first`, then `between` (on the owner), then `second`.
    private static func runInTwoHalves(
        _ snapshot: LocalsSnapshot, _ first: @escaping @Sendable () -> Int, _ second: @escaping @Sendable () -> Int,
        between: () -> Void
    ) -> (Int, Int) {
        let firstDone = DispatchSemaphore(value: 0)
        let goOn = DispatchSemaphore(value: 0)
        let done = DispatchSemaphore(value: 0)
        let results = Protected<(Int, Int)>((0, 0))
        Thread.detachNewThread {
            snapshot.run {
                let a = first()
                firstDone.signal()
                goOn.wait()
                let b = second()
                results.withLock { $0 = (a, b) }
            }
            done.signal()
        }
        firstDone.wait()
        between()
        goOn.signal()
        done.wait()
        return results.withLock { $0 }
    }

    /// A `.copy` scope still open: the run keeps what its first read saw, as a child created at
    /// the capture point keeps the copy it made at its first touch, though the owner writes the
    /// scope meanwhile.
    @Test("a run of a .copy scope still open keeps what its first read saw while the owner writes")
    func openCopyScopeKeepsFirstRead() async {
        let local = Local { Summing() }
        let (a, b) = await Task.detached {
            local.withValue(\.x, 1, inheritance: .copy) { () -> (Int, Int) in
                let snapshot = LocalsSnapshot.capture()
                return Self.runInTwoHalves(snapshot, { local.x }, { local.x }) { local.x = 2 }
            }
        }.value
        #expect(a == 1)
        #expect(b == 1)
    }

    /// A `.shared` scope: the run reads the live value, the owner's later write included.
    @Test("a run of a .shared scope reads the owner's later writes")
    func sharedScopeReadsLive() async {
        let local = Local { Summing() }
        let (a, b) = await Task.detached {
            local.withValue(\.x, 1, inheritance: .shared) { () -> (Int, Int) in
                let snapshot = LocalsSnapshot.capture()
                return Self.runInTwoHalves(snapshot, { local.x }, { local.x }) { local.x = 2 }
            }
        }.value
        #expect(a == 1)
        #expect(b == 2)
    }

    /// A closed `.copy` scope, and the snapshot's copy of a value of the capturing task's own:
    /// a write after a read goes to the run's own value, which the next read sees, and which the
    /// run drops; the runner's own value outside the run is untouched.
    @Test("a write after a read inside a run is the run's own", arguments: [false, true])
    func writeAfterRead(ownValue: Bool) async {
        let local = Local { Summing() }
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            if ownValue {
                local.x = 1
                return LocalsSnapshot.capture()
            }
            return local.withValue(\.x, 1) { LocalsSnapshot.capture() }
        }.value
        let seen = await Task.detached { () -> [Int] in
            local.x = 9  // the runner's own value
            var seen: [Int] = []
            snapshot.run {
                seen.append(local.x)
                local.x = 5
                seen.append(local.x)
                seen.append(local.value.x)
            }
            snapshot.run { seen.append(local.x) }
            seen.append(local.x)
            return seen
        }.value
        #expect(seen == [1, 5, 5, 1, 9])
    }

    /// A `.copy` child's own value is a copy of the scope it was created in, taken at its first
    /// touch. A read inside a run is that first touch, as it was when every first access in a
    /// run made the runner's cell: the owner's later write to the scope does not reach it.
    @Test("a .copy child's first touch inside a run takes its copy then")
    func copyChildFirstTouchInRun() async {
        let local = Local { Summing() }
        let afterRun = await Task.detached { () -> Int in
            local.x = 1
            let snapshot = LocalsSnapshot.capture()
            return await local.withScope(inheritance: .copy) { () async -> Int in
                // Signals that suspend: a child blocking a pool thread would hold up other tests.
                let ranOnce = Signal()
                let ownerWrote = Signal()
                let child = Task { () async -> Int in
                    snapshot.run { _ = local.x }
                    ranOnce.fire()
                    await ownerWrote.wait()
                    return local.x
                }
                await ranOnce.wait()
                local.x = 2
                ownerWrote.fire()
                return await child.value
            }
        }.value
        #expect(afterRun == 1)
    }

    /// A scope opened inside the run after a read, and a reset after one.
    @Test("a scope and a reset inside a run after a read")
    func scopeAndResetAfterRead() async {
        let local = Local { Summing() }
        let snapshot = await Task.detached { local.withValue(\.x, 1) { LocalsSnapshot.capture() } }.value
        let seen = await onNewThread { () -> [Int] in
            var seen: [Int] = []
            snapshot.run {
                seen.append(local.x)
                local.withValue(\.x, 7) { seen.append(local.x) }
                seen.append(local.x)
                local.reset()
                seen.append(local.x)
            }
            snapshot.run { seen.append(local.x) }
            return seen
        }
        #expect(seen == [1, 7, 1, 0, 1])
    }

    /// More Locals read than a run serves in place (the rest get the run's view), each twice, and
    /// a read whose key path (a computed property) reads a dozen other Locals while it is under
    /// way: every read sees the captured value. (Under the Address Sanitizer, this also checks
    /// that no read goes through a cell released under it.)
    @Test("many reads inside a run, some of them nested in a computed property")
    func manyReads() async {
        let locals = (0..<12).map { _ in Local { Summing() } }
        let snapshot = await Task.detached { () -> LocalsSnapshot in
            func nest(_ index: Int) -> LocalsSnapshot {
                guard index < locals.count else {
                    return Self.nestAddends(0) { LocalsSnapshot.capture() }
                }
                return locals[index].withValue(\.x, 100 + index) { nest(index + 1) }
            }
            return nest(0)
        }.value
        let (values, totals) = await onNewThread { () -> ([Int], [Int]) in
            var values: [Int] = []
            var totals: [Int] = []
            for _ in 0..<3 {
                snapshot.run {
                    for local in locals { values.append(local.x) }
                    for local in locals.reversed() { totals.append(local.total) }
                    for local in locals { values.append(local.x) }
                }
            }
            return (values, totals)
        }
        let expected = (0..<12).map { 100 + $0 }
        #expect(values == Array(repeating: expected + expected, count: 3).flatMap { $0 })
        let addendsSum = (0..<12).reduce(0) { $0 + 1_000 + $1 }
        #expect(totals == Array(repeating: expected.reversed().map { $0 + addendsSum }, count: 3).flatMap { $0 })
    }

    /// Runs `body` inside a scope of every Local of `addends` from `index` on, each holding
    /// 1,000 more than its initial value.
    private static func nestAddends<R>(_ index: Int, _ body: () -> R) -> R {
        guard index < addends.count else { return body() }
        return addends[index].withValue(\.self, 1_000 + index) { nestAddends(index + 1, body) }
    }
}
