import Foundation
import Locals
import Testing

@Suite("A synchronous run's parts and views after a discard")
struct RunPartsAfterDiscardTests {
    /// A snapshot taken by an `.overlay` child that wrote a stored part carries an `.overlay` part
    /// (the scope read through, and the child's writes), which a synchronous run puts in place at
    /// its start; one taken by the scope's owner has the scope in its chain, which the run puts in
    /// place lazily, as a view. The running task discards its own key inside the run (as a
    /// `discard(key:)` from another thread may at any moment), and its next touch makes a new
    /// cell: the part or the view goes in place again on it. Inside, the run reads the snapshot's
    /// scope with its own write; after it, the write is gone and the task reads what it had
    /// outside the run (its own scope's value, or the initial value: the discard dropped its own).
    @Test(
        "a discard of the runner's key inside a run: the run still reads the snapshot, its write goes with it",
        arguments: [true, false], [true, false]
    )
    func discardInsideRun(capturedAsPart: Bool, runnerInItsOwnScope: Bool) async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let snapshot = await x.withValue(\.a, 1) { () async -> LocalsSnapshot in
            guard capturedAsPart else { return LocalsSnapshot.capture() }  // the owner's: the chain
            return await Task { () -> LocalsSnapshot in
                x.b = 2  // an .overlay child's write: its layer, and the snapshot's part
                return LocalsSnapshot.capture()
            }.value
        }
        let (inside, after) = await Task { () -> (RunPair, RunPair) in
            let body = { () -> (RunPair, RunPair) in
                let inside = snapshot.run { () -> RunPair in
                    x.discard(key: TaskID.current!)  // the task's own key: what the run put in place goes
                    x.b = 77  // a write inside the run: gone when the run returns
                    return x.value
                }
                return (inside, x.value)
            }
            return runnerInItsOwnScope ? x.withValue(\.a, 5, operation: body) : body()
        }.value
        // Inside: the snapshot's scope (a == 1), never the runner's own scope (a == 5).
        #expect(inside == RunPair(a: 1, b: 77))
        #expect(after == (runnerInItsOwnScope ? RunPair(a: 5, b: 0) : RunPair()))
    }
}
