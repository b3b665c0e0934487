import Foundation
import Locals
import Testing

@Suite("A discard inside a scope opened inside a synchronous run")
struct ScopeInRunDiscardTests {
    /// Inside a synchronous run, the task opens a scope of its own on `x` and discards its own
    /// key inside it (as a `discard(key:)` from another thread may at any moment). Its next touch
    /// makes a placeholder cell into its scope, as outside runs, but `resolveCell` then puts the
    /// run's view on it, above the task's own scope: the scope's value is no longer what the task
    /// reads. When the scope closes, `closeScopeSlowly` does not recognize the placeholder (its
    /// scope is the view), and leaves it; when the run ends, the view's undo points the cell back
    /// into the scope's frame, which the same undo releases. After the run, the task reads freed
    /// memory.
    @Test("a discard inside a scope opened inside a run", arguments: [Inheritance.copy, .fresh, .shared, .overlay])
    func discardInsideScopeInsideRun(policy: Inheritance) async {
        let x = Local<RunPair> { RunPair() }
        let (inside, after) = await Task { () -> (RunPair, RunPair) in
            x.value = RunPair(a: 9, b: 9)
            let inside = LocalsSnapshot().run { () -> RunPair in
                x.withValue(\.a, 1, inheritance: policy) { () -> RunPair in
                    x.discard(key: TaskID.current!)
                    return x.value  // the scope's value: a == 1
                }
            }
            RunViewRemovalTests.reuseFreedMemory()
            let after = x.value  // the discard dropped the task's value: the initial value
            RunViewRemovalTests.reuseFreedMemory()
            return (inside, after)
        }.value
        #expect(inside.a == 1)
        #expect(after == RunPair())
    }

    /// What the task reads inside its own scope after the discard (no read after the run): the
    /// run's view, stacked above the scope, shows the initial value instead of the scope's.
    @Test("inside a scope opened inside a run, after a discard, the scope's value is read", arguments: [Inheritance.copy, .fresh, .shared, .overlay])
    func readInsideScopeInsideRunAfterDiscard(policy: Inheritance) async {
        let x = Local<RunPair> { RunPair() }
        let inside = await Task { () -> RunPair in
            LocalsSnapshot().run { () -> RunPair in
                x.withValue(\.a, 1, inheritance: policy) { () -> RunPair in
                    x.discard(key: TaskID.current!)
                    return x.value
                }
            }
        }.value
        #expect(inside.a == 1)
    }
}
