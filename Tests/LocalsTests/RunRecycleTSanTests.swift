import Foundation
import Locals
import Synchronization
import Testing

@Suite("Thread Sanitizer and a recycled run")
struct RunRecycleTSanTests {
    /// A child task created inside a synchronous run walks the run's boundary at its first touch,
    /// and ends before the run does; the run is then recycled for the thread's next run, which
    /// writes the boundary's fields. That is ordered after the child's reads through the
    /// reference count, which Thread Sanitizer does not see, and through `noteWalked`, which it
    /// does: under `--sanitize=thread` (as CI runs this suite) no data race may be reported.
    @Test("a child that ends inside a synchronous run, then the run is recycled")
    func childEndsInsideRunThenRecycle() async {
        let x = Local<Int> { 0 }
        // A few attempts: the child must read while the run lasts for the path to be checked, and
        // busy pool threads may start it only after the run ended.
        var readInsideRun = false
        for _ in 0..<5 where !readInsideRun {
            let (child, inside) = await onNewThread { () -> (Task<Int, Never>, Bool) in
                // Relaxed: no ordering that Thread Sanitizer sees passes from the child to the run.
                let box = RelaxedBox()
                return LocalsSnapshot().run {
                    let child = Task { () -> Int in
                        let value = x.value  // first touch: walks the run's boundary
                        box.value.store(value, ordering: .relaxed)
                        return value
                    }
                    // Until the child has read, and a while more for it to end and let go of the
                    // boundary (its task-local binding).
                    for _ in 0..<10_000 where box.value.load(ordering: .relaxed) == -1 {
                        usleep(1_000)
                    }
                    let inside = box.value.load(ordering: .relaxed) != -1
                    usleep(50_000)
                    return (child, inside)
                }
            }
            // The child created inside an empty snapshot's run reads the initial value, wherever
            // it read.
            #expect(await child.value == 0)
            readInsideRun = inside
        }
        #expect(readInsideRun, "in 5 attempts, the child never read while the run lasted")
    }
}

/// An integer shared with no ordering that Thread Sanitizer sees.
private final class RelaxedBox: Sendable {
    let value = Atomic<Int>(-1)
}
