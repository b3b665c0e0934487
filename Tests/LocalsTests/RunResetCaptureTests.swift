import Foundation
import Locals
import Testing

private struct Probe: Sendable { var x = -1 }

/// Inside a synchronous run, `reset()` gives the running context the initial value (as it does to
/// the owner of a scope): a snapshot captured after it, in the run, takes that value. What the
/// run leaves behind must not change that from one run to the next in the same task.
@Suite("A capture after a reset inside a run")
struct RunResetCaptureTests {
    /// Each round: reset inside the run, capture there, read the capture in a nested run; then a
    /// write (`kind` 1 and 2), a reset after it (`kind` 1), a discard before the reset (`kind` 2).
    @Test("takes the initial value the reset gave, in every round", arguments: [0, 1, 2])
    func sameEveryRound(kind: Int) async {
        let probe = Local { Probe() }
        let snapshot = await Task.detached { probe.withValue(\.x, 7) { LocalsSnapshot.capture() } }.value
        let seen = await Task.detached { () -> [Int] in
            var seen: [Int] = []
            let me = TaskID.current!
            for _ in 0..<3 {
                snapshot.run {
                    if kind == 2 { probe.discard(key: me) }
                    probe.reset()
                    let inner = LocalsSnapshot.capture()
                    inner.run { seen.append(probe.x) }
                    if kind >= 1 { probe.x = 11 }
                    if kind == 1 { probe.reset() }
                }
            }
            return seen
        }.value
        #expect(seen == [-1, -1, -1])
    }
}
