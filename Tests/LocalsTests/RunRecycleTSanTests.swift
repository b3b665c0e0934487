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
        let child = await onNewThread { () -> Task<Int, Never> in
            // Relaxed: no ordering that Thread Sanitizer sees passes from the child to the run.
            let box = RelaxedBox()
            return LocalsSnapshot().run {
                let child = Task { () -> Int in
                    let value = x.value  // first touch: walks the run's boundary
                    box.value.store(value, ordering: .relaxed)
                    return value
                }
                // Until the child has read, and a while more for it to end and let go of the
                // boundary (its task-local binding). If other work keeps the pool's threads busy
                // meanwhile, the child reads after the run and the test checks less, but it
                // never fails for being slow: what the child read is awaited below.
                for _ in 0..<10_000 where box.value.load(ordering: .relaxed) == -1 {
                    usleep(1_000)
                }
                usleep(50_000)
                return child
            }
        }
        // The child created inside an empty snapshot's run reads the initial value.
        #expect(await child.value == 0)
    }
}

/// An integer shared with no ordering that Thread Sanitizer sees.
private final class RelaxedBox: Sendable {
    let value = Atomic<Int>(-1)
}
