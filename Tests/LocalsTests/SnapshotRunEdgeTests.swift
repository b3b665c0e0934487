import Foundation
import Locals
import Testing

@Suite("A discard inside a scope, touched again from a run inside it")
struct NestedRunDiscardTests {
    /// The task discards its own key inside a scope of its own (opened inside a run, or not), and
    /// a run inside that scope writes and reads the Local: after everything closed, the task reads
    /// the initial value (the discard dropped its own), with nothing left of the scope or the runs.
    @Test("discard in a scope, a run inside it touches the Local again", arguments: [true, false])
    func discardInScopeRunTouches(insideAnOuterRun: Bool) async {
        let copy = Local<RunPair>(inheritance: .copy) { RunPair() }
        let after = await Task { () -> [RunPair] in
            copy.value = RunPair(a: 1, b: 1)
            var seen: [RunPair] = []
            let scope = {
                copy.withValue(\.a, 46, inheritance: .fresh) {
                    copy.discard(key: TaskID.current!)
                    LocalsSnapshot().run {
                        copy.a = 4
                        seen.append(copy.value)
                    }
                    seen.append(copy.value)
                }
                seen.append(copy.value)
            }
            if insideAnOuterRun {
                LocalsSnapshot().run(scope)
            } else {
                scope()
            }
            seen.append(copy.value)
            return seen
        }.value
        #expect(after.last == RunPair())
    }
}

@Suite("A frozen redirect, and a view's listing, undone after another key's removal")
struct RunEndFrozenRedirectSlowUndoTests {
    /// A run's view of a captured `.overlay` scope is a redirect of the runner's cell, and a
    /// whole-value write freezes the cell (its own private frame). When some other cell of the
    /// Local is removed during the run (here: another task's key discarded), the redirect is
    /// undone on the slow path: the cell must go back all the same, and the run's write with it.
    @Test("a run's frozen redirect, then another key discarded", arguments: [false, true])
    func runFreezeThenOtherDiscard(async: Bool) async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let snapshot = x.withValue(\.self, [1]) { LocalsSnapshot.capture() }
        let seen = await Task { () -> [[Int]] in
            x.value = [5]
            let other = await Task { () -> TaskID in x.value = [8]; return TaskID.current! }.value
            var seen: [[Int]] = []
            func body() {
                seen.append(x.value)
                x.value = [7]  // freezes the view
                x.discard(key: other)  // some other cell goes: the epoch moves
                seen.append(x.value)
            }
            if async {
                await snapshot.run { () async in body() }  // the async run: an async body
            } else {
                snapshot.run { body() }
            }
            seen.append(x.value)
            return seen
        }.value
        #expect(seen == [[1], [7], [5]])
    }

    /// The same with a scope view (a `.copy` capture): a write to the view lists the cell for the
    /// run only, also when the view is taken away on the slow path.
    @Test("a sync run's view written, then another key discarded: the listing goes with the run")
    func syncRunListingAfterOtherDiscard() async {
        let x = Local<[Int]>(inheritance: .copy, name: "listed-in-run") { [0] }
        let snapshot = x.withValue(\.self, [1]) { LocalsSnapshot.capture() }
        // This Local's entries in a capture. (Not `count`: a queue thread may also hold a `.thread`
        // value that another test, running at the same time, left on it, or released since.)
        let entries = { LocalsSnapshot.capture().debugDescription.split(separator: "\n").filter { $0.contains("\"listed-in-run\"") }.count }
        let parts = await Task { () -> (Int, Int) in
            _ = x.value  // a cell from the initial value, not listed
            let other = await Task { () -> TaskID in x.value = [8]; return TaskID.current! }.value
            let before = entries()
            snapshot.run {
                x.value = [7]  // the view's value: lists the cell
                x.discard(key: other)
            }
            let after = entries()
            return (before, after)
        }.value
        #expect(parts.0 == 0 && parts.1 == 0)
    }
}

@Suite("A placeholder inside a scope opened in a run, touched again")
struct RunEndPlaceholderTests {
    /// Inside a synchronous run the task opens a scope of `x` and discards its own key there: its
    /// next touch makes a placeholder cell in that scope, which is what the task sees there, not
    /// the run's view. A later touch that misses the cache must not put the run's view on top of
    /// the scope either: one after a nested run that touched `x` (a case the nested-run fuzz test
    /// found), or one after touches of other Locals evicted `x`'s cache slot. (It did, and the
    /// run's end then pointed the cell at the scope's freed frame.)
    @Test("a placeholder in a scope opened inside a run, touched again after a cache miss", arguments: [true, false])
    func placeholderTouchedAgain(afterANestedRun: Bool) async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let others = (0..<3000).map { _ in Local<Int> { 0 } }
        let seen = await Task { () -> [[Int]] in
            x.value = [1]
            var seen: [[Int]] = []
            LocalsSnapshot().run {
                x.withValue(\.self, [2]) {
                    x.discard(key: TaskID.current!)
                    if afterANestedRun {
                        LocalsSnapshot().run {
                            seen.append(x.value)  // the nested run's view on the placeholder: [0]
                        }
                    } else {
                        seen.append(x.value)  // the placeholder in this scope: [2]
                        for other in others { _ = other.value }  // evicts x's cache slot
                    }
                    x.value = [3]  // the scope's value
                    seen.append(x.value)
                }
                seen.append(x.value)  // the run's view of x: the initial value
            }
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(x.value)  // the task's own value after a discard: the initial value
            return seen
        }.value
        #expect(seen == [afterANestedRun ? [0] : [2], [3], [0], [0]])
    }
}

@Suite("An initializer that captures, run for a view")
struct RunEndInitializerCaptureTests {
    /// The cache slot of a run's view is stored only after the view, and a `resolveCell` of a key
    /// whose initializer is running stops the program (an initializer touching its own Local). An
    /// initializer that captures a snapshot (directly, or through an API that carries the Locals)
    /// reads every listed Local's own value, this one's included: that is no touch, and must not
    /// stop, inside a run as outside.
    #if compiler(>=6.2)
    @Test("an initializer capturing a snapshot, run for a synchronous run's view")
    func initializerCapturesForView() async {
        await #expect(processExitsWith: .success) {
            let x = Local<[Int]> {
                _ = LocalsSnapshot.capture()
                return [1]
            }
            let value = await Task { () -> [Int] in
                x.value = [5]  // listed: a capture takes it
                return LocalsSnapshot().run { x.value }  // the view: the initializer runs, and captures
            }.value
            exit(value == [1] ? 0 : 1)
        }
    }
    #endif
}

@Suite("User code while a run gives the thread back")
struct RunEndGiveBackTests {
    /// `giveBack` releases the cells the run held (`viewed[i].cell = nil`) before `endRun()`, while
    /// the run's boundary is still bound (no-parts path: `end`, then `unbind`). A removed cell's
    /// value's deinit runs there; a `reset()` of another Local the task has no cell of asks
    /// `visibleScope`, which still finds the run (not ended) and resets the captured `.shared`
    /// scope: the snapshot's owner's value, after the run is over.
    @Test("a deinit run by giveBack resets a Local: the captured shared scope is reset")
    func deinitInGiveBackResetsCapturedShared() async {
        let y = Local<[Int]>(inheritance: .shared) { [0] }
        let x = Local<OnDeinit?> { nil }
        let order = Protected<[String]>([])
        await y.withValue(\.self, [5]) {
            let snapshot = LocalsSnapshot.capture()
            await Task.detached {  // not a child of y's scope: outside the run it sees none
                x.value = OnDeinit { order.withLock { $0.append("deinit") }; y.reset() }
                snapshot.run {
                    _ = x.value  // the run's view of x, on the task's cell
                    x.discard(key: TaskID.current!)  // the cell goes; the run still holds it
                    order.withLock { $0.append("body end") }
                }
                order.withLock { $0.append("run returned") }
            }.value
            #expect(order.withLock { $0 } == ["body end", "deinit", "run returned"])
            #expect(y.value == [5])
        }
    }
}

@Suite("A frozen child's reset while a run ends")
struct RunEndFrozenResetTests {
    /// A frozen `.overlay` child (it wrote its whole value) runs a snapshot holding another
    /// `.overlay` scope of the same Local; a deinit that runs while the run ends (as the run takes
    /// its views away, or as it lets go of the cells it held) resets the child, which goes back to
    /// reading through the scope it sees: its parent's, never the snapshot's, which goes soon
    /// after.
    @Test("a frozen overlay child reset by a deinit while the run ends", arguments: [true, false])
    func frozenChildResetWhileRunEnds(asTheViewGoes: Bool) async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let y = Local<OnDeinit?> { nil }
        let holder = Protected<LocalsSnapshot?>(x.withValue(\.self, [9]) { LocalsSnapshot.capture() })
        let seen = await x.withValue(\.self, [1]) {
            await Task { () -> [Int] in
                x.value = [2]  // the whole value: frozen, the child's own
                if !asTheViewGoes {
                    y.value = OnDeinit { x.reset() }  // back to reading through the parent's scope
                }
                do {
                    let snapshot = holder.withLock { $0.take() }!
                    snapshot.run {
                        if asTheViewGoes {
                            y.value = OnDeinit { x.reset() }  // the view's value: released as the view goes
                        } else {
                            _ = y.value
                            y.discard(key: TaskID.current!)  // released as the run lets go of its cells
                        }
                    }
                }  // the snapshot, and its scope of x, go
                RunViewRemovalTests.reuseFreedMemory()
                return x.value  // the parent's scope: [1]
            }.value
        }
        #expect(seen == [1])
    }
}
