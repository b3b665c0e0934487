import Foundation
import Locals
import Testing

@Suite("A synchronous run's parts after a discard")
struct RunPartsAfterDiscardTests {
    /// A snapshot taken by an `.overlay` child that wrote a stored part carries an `.overlay` part
    /// (the scope read through, and the child's writes), which a synchronous run puts in place at
    /// its start and marks as viewed "on whatever cell". The running task, inside a scope of its
    /// own, discards its key inside the run (as a `discard(key:)` from another thread may at any
    /// moment): its next touch makes a cell as outside the run, a placeholder into its own scope, and
    /// no view goes on it. The run then reads the task's own scope's value (not the snapshot's), and
    /// its write lands in that scope, where it stays after the run.
    @Test("a discard inside a run with an .overlay part: the run's write stays in the runner's scope")
    func discardInsideRunWithOverlayPart() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let snapshot = await x.withValue(\.a, 1) {
            await Task { () -> LocalsSnapshot in
                x.b = 2  // an .overlay child's write: its layer
                return LocalsSnapshot.capture()
            }.value
        }
        let (inside, after) = await Task { () -> (RunPair, RunPair) in
            x.withValue(\.a, 5) {
                let inside = snapshot.run { () -> RunPair in
                    x.discard(key: TaskID.current!)  // the task's own key: the layer put in place goes
                    x.b = 77  // a write inside the run: discarded when the run returns
                    return x.value
                }
                return (inside, x.value)
            }
        }.value
        // Inside: the snapshot's scope (a == 1), never the runner's own scope (a == 5).
        #expect(inside.a == 1)
        // After the run, inside the runner's own scope: its value, without the run's write.
        #expect(after == RunPair(a: 5, b: 0))
    }

    /// The same with the running task outside any scope: the run's write after the discard goes
    /// into the task's own value, and is still there after the run.
    @Test("a discard inside a run with an .overlay part: the run's write outlives the run")
    func discardInsideRunWithOverlayPartOutsideScopes() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let snapshot = await x.withValue(\.a, 1) {
            await Task { () -> LocalsSnapshot in
                x.b = 2
                return LocalsSnapshot.capture()
            }.value
        }
        let (inside, after) = await Task { () -> (RunPair, RunPair) in
            let inside = snapshot.run { () -> RunPair in
                x.discard(key: TaskID.current!)
                x.b = 77
                return x.value
            }
            return (inside, x.value)
        }.value
        #expect(inside.a == 1)
        #expect(after.b != 77)  // the run's write must not outlive the run
    }

    /// Control (passes): the same with a snapshot taken by the scope's owner, whose `.overlay`
    /// scope is in the captured chain (a lazy view, not a part): after the discard the view goes in
    /// place again on the new cell, and the run's write goes when the run returns.
    @Test("control: a discard inside a run with a lazy .overlay view")
    func discardInsideRunWithLazyView() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let snapshot = x.withValue(\.a, 1) { LocalsSnapshot.capture() }
        let (inside, after) = await Task { () -> (RunPair, RunPair) in
            let inside = snapshot.run { () -> RunPair in
                x.discard(key: TaskID.current!)
                x.b = 77
                return x.value
            }
            return (inside, x.value)
        }.value
        #expect(inside == RunPair(a: 1, b: 77))
        #expect(after == RunPair())
    }
}
