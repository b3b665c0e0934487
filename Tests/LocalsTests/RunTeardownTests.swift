import Foundation
import Locals
import Testing

/// Runs `body` when released: a value whose deinit uses a Local (documented as allowed: "Values
/// are released outside every lock, so a value's deinit may use any Local").
final class OnDeinit: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
    deinit { body() }
}

@Suite("User code while a synchronous run takes its views away")
struct RunTeardownTests {
    /// Nested synchronous runs on one task. The inner run puts views of `z` and then `x` in place;
    /// when it ends, `x`'s view goes first, and the deinit of the value written there reads `z`,
    /// whose inner view is still in place. The thread is back in the outer run by then, so that
    /// read puts the outer run's view of `z` on top of the inner one; then the inner view of `z` is
    /// taken away, which points the cell back to where it was before the inner view, under the
    /// outer view. The outer run then reads `z`'s value outside both runs, and when it ends
    /// points the cell at the inner view's frame, which it frees in the same step.
    @Test("a deinit reading another Local while an inner run's views go")
    func deinitReadsLocalDuringInnerRunTeardown() async {
        let result = await Task { () -> [[Int]] in
            let z = Local<[Int]> { [0] }
            let x = Local<OnDeinit?> { nil }
            z.value = [1]
            let outer = LocalsSnapshot.capture()  // z = [1]
            z.value = [2]
            let inner = LocalsSnapshot.capture()  // z = [2]
            z.value = [3]  // the task's own value outside both runs
            var seen: [[Int]] = []
            let deinitSaw = Protected<[Int]>([])
            outer.run {
                inner.run {
                    seen.append(z.value)  // [2]: the inner view of z
                    x.value = OnDeinit { deinitSaw.withLock { $0 = z.value } }
                }
                seen.append(z.value)  // [1]: the outer run's view of z
            }
            seen.append(deinitSaw.withLock { $0 })
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(z.value)  // [3]: the task's own value
            z.value = [4]
            RunViewRemovalTests.reuseFreedMemory()
            seen.append(z.value)
            return seen
        }.value
        // The deinit ran inside the outer run: it may see [1] (outer view) or [2]; anything is
        // tolerable there except a crash. The reads of the runs and after them are what count.
        #expect(result[0] == [2])
        #expect(result[1] == [1])
        #expect(result[3] == [3])
        #expect(result[4] == [4])
    }
}
