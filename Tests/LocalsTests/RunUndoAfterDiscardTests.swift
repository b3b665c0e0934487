import Foundation
import Locals
import Testing

/// Two stored fields: an `.overlay` child's write to one of them goes into its layer.
struct RunPair: Sendable, Equatable {
    var a = 0
    var b = 0
}

@Suite("A synchronous run's redirect undone after a discard")
struct RunUndoAfterDiscardTests {
    /// The runner is an `.overlay` child with writes of its own (its layer). A synchronous run of a
    /// snapshot of the same `.overlay` scope (taken by the scope's owner) redirects its cell with
    /// a fresh layer, saving the child's own overlay state. The child discards its own key inside
    /// the run: the layer is dropped, and its next touch makes a new cell reading through the same
    /// scope, which gets the view again. When the run ends, the first redirect's undo
    /// (`undoSlowly`) finds the new cell on the same route and frame, and puts the old overlay state
    /// (with the discarded layer) on it: after the run the child sees the writes it discarded.
    @Test("a discarded .overlay layer comes back after a synchronous run")
    func discardedLayerComesBackAfterRun() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let after = await x.withValue(\.a, 1) {
            let snapshot = LocalsSnapshot.capture()  // the scope's owner: the scope, in the chain
            return await Task { () -> RunPair in
                x.b = 2  // the child's own write: its layer
                snapshot.run {
                    _ = x.value  // the view: a redirect with a fresh layer
                    x.discard(key: TaskID.current!)  // drops the child's storage, layer included
                    _ = x.value  // a new cell reading through the scope, and the view again
                }
                return x.value
            }.value
        }
        // The discard dropped the child's layer: it reads through to the scope again.
        #expect(after == RunPair(a: 1, b: 0))
    }

    /// Control (passes): the same discard with no run drops the layer.
    @Test("control: a discarded .overlay layer stays dropped without a run")
    func discardedLayerStaysDroppedWithoutRun() async {
        let x = Local<RunPair>(inheritance: .overlay) { RunPair() }
        let after = await x.withValue(\.a, 1) {
            await Task { () -> RunPair in
                x.b = 2
                x.discard(key: TaskID.current!)
                _ = x.value
                return x.value
            }.value
        }
        #expect(after == RunPair(a: 1, b: 0))
    }
}
