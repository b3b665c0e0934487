import Foundation
import Locals
import Testing

@Suite("A run view's value after the run")
struct RunViewRetentionTests {
    /// A value written to a synchronous run's view belongs to the run: the view is taken away,
    /// and its value released, when the run returns (no task can see it any more), also when a
    /// scope of the same Local opened inside the run (which restores the view when it closes) is
    /// still held by a child created inside it.
    @Test("a run view's value is released when the run returns, though a child keeps a scope opened over it")
    func viewValueReleasedAfterRun() async {
        let x = Local<Tracked?> { nil }
        let counter = DeinitCounter()
        let release = Signal()
        let child = Protected<Task<Void, Never>?>(nil)
        await Task {
            LocalsSnapshot().run {
                x.value = counter.make(1)  // the run's own value, in its view
                x.withValue(\.self, nil) {
                    child.withLock { $0 = Task { await release.wait() } }  // keeps this scope's frame
                }
            }
        }.value
        // The run has returned: its view's value, which no one can see any more, went with it.
        let released = counter.count
        release.fire()
        await child.withLock { $0 }?.value
        #expect(released == 1)
    }
}
