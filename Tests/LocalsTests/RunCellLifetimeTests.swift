import Foundation
import Locals
import Testing

/// A task with no pin (`LOCALS_FORCE_FALLBACK=taskEnd`, or an `async let` child under
/// `asyncLetParent`) has its cell bounded by the scope it inherited, which outlives it. A cell it
/// makes inside an `async` run of a snapshot, reading through the snapshot's `.shared` scope, must
/// not be bounded by that scope: the snapshot may go while the task still runs, and its cell (the
/// one made in the run, or any after) must stay. (Without the fallbacks, these check the same
/// reads with pinned tasks.)
@Suite("A cell made inside a snapshot run of its own task outlives the snapshot")
struct RunCellLifetimeTests {
    @Test("a cell remade inside an async run is not bounded by the snapshot's frame after the run")
    func asyncRunRemadeCellKeptBySnapshotFrame() async {
        let local = Local<[Int]>(inheritance: .shared) { [1] }
        let holder = Protected<LocalsSnapshot?>(local.withValue(\.self, [7]) { LocalsSnapshot.capture() })
        let result = await Task.detached { await Self.readAcrossTheRun(local, holder) }.value
        #expect(result == [7, 3, 3, 4])
    }

    /// The same from an `async let` child, which has no pin of its own under
    /// `LOCALS_FORCE_FALLBACK=asyncLetParent`.
    @Test("an async let child's cell remade inside an async run is not bounded by the snapshot's frame")
    func asyncLetChildRemadeCellKeptBySnapshotFrame() async {
        let local = Local<[Int]>(inheritance: .shared) { [1] }
        let holder = Protected<LocalsSnapshot?>(local.withValue(\.self, [7]) { LocalsSnapshot.capture() })
        async let child = Self.readAcrossTheRun(local, holder)
        #expect(await child == [7, 3, 3, 4])
    }

    /// Runs the snapshot in `holder` (the only reference to it, so that it goes after the run),
    /// discarding the running task's key inside and reading again, then writes and reads after
    /// the run and after the snapshot went, with freed memory reused in between.
    static func readAcrossTheRun(_ local: Local<[Int]>, _ holder: Protected<LocalsSnapshot?>) async -> [Int] {
        var seen: [Int] = []
        do {
            let snapshot = holder.withLock { $0.take() }!
            await snapshot.run {
                local.discard(key: TaskID.current!)  // own key: the cell goes at once
                seen.append(local.value.first!)  // made again, reading through the captured scope
                await Task.yield()
            }
            local.value = [3]  // after the run: a cell of the task's own, cached
            seen.append(local.value.first!)
        }  // the snapshot goes here, and its frame with it
        RunViewRemovalTests.reuseFreedMemory()
        seen.append(local.value.first!)
        local.value = [4]
        RunViewRemovalTests.reuseFreedMemory()
        seen.append(local.value.first!)
        return seen
    }
}
