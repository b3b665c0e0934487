import Foundation
import Locals
import Testing

@Suite("A discard inside a scope inside a run, touched again from a nested run")
struct NestedRunDiscardTests {
    @Test("discard in a scope inside a run, nested run touches it again")
    func discardInScopeNestedRunTouches() async {
        let copy = Local<RunPair>(inheritance: .copy) { RunPair() }
        let after = await Task { () -> [RunPair] in
            copy.value = RunPair(a: 1, b: 1)
            var seen: [RunPair] = []
            LocalsSnapshot().run {
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
            seen.append(copy.value)
            return seen
        }.value
        #expect(after.last == RunPair())
    }

    @Test("discard in a scope, a run touches it again, no outer run")
    func discardInScopeRunTouchesNoOuterRun() async {
        let copy = Local<RunPair>(inheritance: .copy) { RunPair() }
        let after = await Task { () -> [RunPair] in
            copy.value = RunPair(a: 1, b: 1)
            var seen: [RunPair] = []
            copy.withValue(\.a, 46, inheritance: .fresh) {
                copy.discard(key: TaskID.current!)
                LocalsSnapshot().run {
                    copy.a = 4
                    seen.append(copy.value)
                }
                seen.append(copy.value)
            }
            seen.append(copy.value)
            return seen
        }.value
        #expect(after.last == RunPair())
    }
}

@Suite("A placeholder made in a nested run")
struct RunEndNestedRunPlaceholderTests {
    /// A case the nested-run fuzz test found (NestedRunFuzzTests), reduced. Inside a synchronous run R0 the task opens a
    /// scope S1 of `x` and discards its own key there; a nested run R1 touches `x` (a placeholder
    /// cell P in S1 is made, and R1's view goes on it and away again); back in R0, the next touch
    /// finds P, which is not the cell R0 viewed (`onOther`) and was not `made` now, so R0 puts a
    /// second view on P, on top of S1. S1's close then finds P not in S1 and leaves it; R0's end
    /// points P back at S1, which is freed: the read after the run is a use-after-free.
    @Test("a placeholder made in a nested run gets the enclosing run's view on top of its scope")
    func placeholderFromNestedRunViewedByEnclosingRun() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let seen = await Task { () -> [[Int]] in
            x.value = [1]
            var seen: [[Int]] = []
            LocalsSnapshot().run {
                x.withValue(\.self, [2]) {
                    x.discard(key: TaskID.current!)
                    LocalsSnapshot().run {
                        seen.append(x.value)  // P made in S1, R1's view (initial value) on it
                    }
                    x.value = [3]  // R0's view again, on top of S1
                    seen.append(x.value)
                }
                seen.append(x.value)
            }
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(x.value)  // the task's own value after a discard: the initial value
            return seen
        }.value
        #expect(seen == [[0], [3], [0], [0]])
    }
}

@Suite("A frozen redirect, and a view's listing, undone after another key's removal")
struct RunEndFrozenRedirectSlowUndoTests {
    /// A run's view of a captured `.overlay` scope is a redirect of the runner's cell. A whole-value
    /// write freezes the cell (route `.scope`, a private frame). If any other cell of the Local is
    /// removed during the run (here: another task's key discarded), `undo` takes the slow path, and
    /// `undoSlowly` finds the redirected cell itself but off the redirect's route, and returns
    /// without putting it back: the run's write stays the task's value after the run.
    @Test("sync run: freeze, then another key discarded")
    func syncRunFreezeThenOtherDiscard() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let snapshot = x.withValue(\.self, [1]) { LocalsSnapshot.capture() }
        let seen = await Task { () -> [[Int]] in
            x.value = [5]
            let other = await Task { () -> TaskID in x.value = [8]; return TaskID.current! }.value
            var seen: [[Int]] = []
            snapshot.run {
                seen.append(x.value)
                x.value = [7]  // freezes the view
                x.discard(key: other)  // some other cell goes: the epoch moves
                seen.append(x.value)
            }
            seen.append(x.value)
            return seen
        }.value
        #expect(seen == [[1], [7], [5]])
    }

    @Test("async run: freeze, then another key discarded")
    func asyncRunFreezeThenOtherDiscard() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let snapshot = x.withValue(\.self, [1]) { LocalsSnapshot.capture() }
        let seen = await Task { () -> [[Int]] in
            x.value = [5]
            let other = await Task { () -> TaskID in x.value = [8]; return TaskID.current! }.value
            var seen: [[Int]] = []
            await snapshot.run {
                seen.append(x.value)
                x.value = [7]
                x.discard(key: other)
                seen.append(x.value)
            }
            seen.append(x.value)
            return seen
        }.value
        #expect(seen == [[1], [7], [5]])
    }

    /// The same with a scope view (.copy capture): the listing put back only on the fast path.
    @Test("sync run: a view written, then another key discarded: listing stays")
    func syncRunListingAfterOtherDiscard() async {
        let x = Local<[Int]>(inheritance: .copy) { [0] }
        let snapshot = x.withValue(\.self, [1]) { LocalsSnapshot.capture() }
        let parts = await Task { () -> (Int, Int) in
            _ = x.value  // a cell from the initial value, not listed
            let other = await Task { () -> TaskID in x.value = [8]; return TaskID.current! }.value
            let before = LocalsSnapshot.capture().count
            snapshot.run {
                x.value = [7]  // the view's value: lists the cell
                x.discard(key: other)
            }
            let after = LocalsSnapshot.capture().count
            return (before, after)
        }.value
        #expect(parts.0 == parts.1)
    }
}

@Suite("A placeholder inside a scope opened in a run, after a cache miss")
struct RunEndPlaceholderCacheMissTests {
    /// The same defect with a single run: `enterRunView` skips the view for a placeholder made in a
    /// scope opened inside the run only when the cell was `made` by that very touch. Its cache slot
    /// evicted (here by touching many other Locals), the next touch of the placeholder goes back
    /// through `resolveCell` with `made == false`, sees a cell other than the one the run viewed
    /// (`onOther`), and puts the run's view on top of the task's own scope.
    @Test("placeholder in a scope opened inside a run, cache slot evicted")
    func placeholderViewedAgainAfterEviction() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let others = (0..<3000).map { _ in Local<Int> { 0 } }
        let seen = await Task { () -> [[Int]] in
            x.value = [1]
            var seen: [[Int]] = []
            LocalsSnapshot().run {
                x.withValue(\.self, [2]) {
                    x.discard(key: TaskID.current!)
                    seen.append(x.value)  // a placeholder in this scope: [2]
                    for other in others { _ = other.value }  // evicts x's cache slot
                    x.value = [3]  // the run's view again, on top of the scope
                    seen.append(x.value)
                }
                seen.append(x.value)
            }
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(x.value)
            return seen
        }.value
        #expect(seen == [[2], [3], [0], [0]])
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

@Suite("A frozen child's reset while a run gives the thread back")
struct RunEndGiveBackFrozenResetTests {
    /// The same window, with a frozen `.overlay` child: its `reset()` points the cell back at
    /// `visibleScope`, which (the run's boundary still bound and not ended) is the snapshot's
    /// captured scope, not the child's parent's. After the run the child reads the snapshot's
    /// scope; once the snapshot goes, freed memory.
    @Test("a frozen overlay child reset by a deinit in giveBack")
    func frozenChildResetInGiveBack() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let y = Local<OnDeinit?> { nil }
        let holder = Protected<LocalsSnapshot?>(x.withValue(\.self, [9]) { LocalsSnapshot.capture() })
        let seen = await x.withValue(\.self, [1]) {
            await Task { () -> [Int] in
                x.value = [2]  // the whole value: frozen, the child's own
                y.value = OnDeinit { x.reset() }  // back to reading through the parent's scope
                do {
                    let snapshot = holder.withLock { $0.take() }!
                    snapshot.run {
                        _ = y.value
                        y.discard(key: TaskID.current!)  // released in giveBack: the hook runs there
                    }
                }  // the snapshot, and its scope of x, go
                RunViewRemovalTests.reuseFreedMemory()
                return x.value  // the parent's scope: [1]
            }.value
        }
        #expect(seen == [1])
    }
}

@Suite("A frozen child's reset while a run takes its views away")
struct RunEndTakeViewsAwayFrozenResetTests {
    @Test("a frozen overlay child reset by a deinit in takeViewsAway")
    func frozenChildResetInTakeViewsAway() async {
        let x = Local<[Int]>(inheritance: .overlay) { [0] }
        let y = Local<OnDeinit?> { nil }
        let holder = Protected<LocalsSnapshot?>(x.withValue(\.self, [9]) { LocalsSnapshot.capture() })
        let seen = await x.withValue(\.self, [1]) {
            await Task { () -> [Int] in
                x.value = [2]  // frozen
                do {
                    let snapshot = holder.withLock { $0.take() }!
                    snapshot.run {
                        y.value = OnDeinit { x.reset() }  // the view's value: released as the view goes
                    }
                }
                RunViewRemovalTests.reuseFreedMemory()
                return x.value  // the parent's scope: [1]
            }.value
        }
        #expect(seen == [1])
    }
}
