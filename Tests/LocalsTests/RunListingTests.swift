import Foundation
import Locals
import Synchronization
import Testing

@Suite("What a write inside a synchronous run lists")
struct RunListingTests {
    /// `LocalsSnapshot` documents: "The context's own value, where it wrote one outside a scope
    /// ...: a copy. A value it only read is not taken." A write to a synchronous run's view lists the
    /// Local on the running task's cell itself (`Cell.isListed`, `noteFirstWrite`), which stays
    /// listed after the run. So a snapshot the task takes after the run copies the value it only
    /// read, and a run of it elsewhere shows that value instead of the initial value.
    @Test("a write inside a run makes a later capture take a value the task only read")
    func writeInsideRunListsReadOnlyValue() async {
        let counter = Atomic<Int>(0)
        let x = Local<Int> { counter.add(1, ordering: .relaxed).newValue }
        let (mine, fromSnapshot) = await Task { () -> (Int, Int) in
            let mine = x.value  // read, never written outside a scope
            LocalsSnapshot().run { x.value = -1 }  // a write to the run's view, gone when it returns
            #expect(x.value == mine)
            let snapshot = LocalsSnapshot.capture()
            let seen = await Task.detached { snapshot.run { x.value } }.value
            return (mine, seen)
        }.value
        // A snapshot that holds nothing of `x` shows the initial value: a new one, not the task's.
        #expect(fromSnapshot != mine)
    }

    /// Control (passes): the same without the run inside.
    @Test("control: a capture does not take a value the task only read")
    func captureSkipsReadOnlyValue() async {
        let counter = Atomic<Int>(0)
        let x = Local<Int> { counter.add(1, ordering: .relaxed).newValue }
        let (mine, fromSnapshot) = await Task { () -> (Int, Int) in
            let mine = x.value
            let snapshot = LocalsSnapshot.capture()
            let seen = await Task.detached { snapshot.run { x.value } }.value
            return (mine, seen)
        }.value
        #expect(fromSnapshot != mine)
    }
}
