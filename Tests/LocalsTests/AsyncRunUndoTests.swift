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
}
