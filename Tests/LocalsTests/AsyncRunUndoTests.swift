import Foundation
import Locals
import Testing

@Suite("An async run's redirect undone on a cell made inside the run")
struct AsyncRunUndoTests {
    /// An `async` run of a snapshot holding a `.shared` scope redirects the runner's cell into it.
    /// The runner is inside a scope of its own (`.copy`), and discards its own key inside the run;
    /// its next touch makes a cell that reads through the captured `.shared` scope (a plain `Cell`,
    /// with no value of its own). When the run ends, `undoSlowly` finds that cell on the redirect's
    /// route and frame and, since the route saved was not `.own`, points it into the runner's own
    /// scope. When that scope closes (slowly: a cell was removed), the cell is pointed back to
    /// `.own`, which a cell with no value of its own cannot take: a debug build stops at
    /// `Cell.checkRoute`; a release build reads `own.value` of an object that has none.
    @Test("a cell made inside an async run, sent into the runner's own scope, then back to .own")
    func asyncRunCellMadeAfterDiscardLandsInRunnersScope() async {
        let x = Local<[Int]>(inheritance: .shared) { [0] }
        let snapshot = x.withValue(\.self, [7]) { LocalsSnapshot.capture() }
        let seen = await Task { () -> [[Int]] in
            var seen: [[Int]] = []
            x.value = [1]  // the task's own value
            await x.withValue(\.self, [5], inheritance: .copy) {
                await snapshot.run {
                    x.discard(key: TaskID.current!)
                    seen.append(x.value)  // [7]: reading through the captured .shared scope
                    await Task.yield()
                }
                seen.append(x.value)  // [5]: the task's own scope
            }
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(x.value)  // the discard dropped [1]: the initializer's [0]
            return seen
        }.value
        #expect(seen == [[7], [5], [0]])
    }

    /// The same with a captured `.overlay` scope and a runner outside any scope of its own: the cell
    /// made inside the run (an `.overlay` child of the captured scope) freezes at a whole-value
    /// write, so its route no longer matches the redirect's and `undoSlowly` leaves it as it is.
    /// After the run the task reads the run's write, and its `reset()` (a frozen child going back
    /// to the scope it sees, which is none outside the run) points the cell at no scope: a debug
    /// build stops at `Cell.checkRoute`.
    @Test("a cell frozen inside an async run keeps the run's write, and reset() finds no scope")
    func asyncRunFrozenCellOutlivesRun() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let snapshot = x.withValue(\.a, 1) { LocalsSnapshot.capture() }
        let (after, afterReset) = await Task { () -> (RunPair, RunPair) in
            await snapshot.run {
                x.discard(key: TaskID.current!)
                x.value = RunPair(a: 40, b: 41)  // a whole-value write: the new child cell freezes
                await Task.yield()
            }
            let after = x.value
            x.reset()
            return (after, x.value)
        }.value
        #expect(after == RunPair())  // the discard dropped the task's value; the run's write went with the run
        #expect(afterReset == RunPair())
    }
}
