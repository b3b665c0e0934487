import Foundation
import Locals
import Testing

@Suite("A run view's initializer touching its own Local")
struct RunViewInitializerTests {
    /// An initializer that touches the same Local for the same key stops the program. Inside a
    /// synchronous run, the first access of a Local the snapshot holds nothing of runs the
    /// initializer for the run's view while the task's cell exists already: its touch of the
    /// Local stops there too, rather than reaching the task's value outside the run (where a
    /// write would outlive the run).
    #if compiler(>=6.2)
    @Test("a view's initializer writing its own Local for the same key stops the program")
    func viewInitializerWritesOwnLocal() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let box = Protected<Local<[Int]>?>(nil)
            let calls = Protected(0)
            let x = Local<[Int]> {
                let call = calls.withLock { $0 += 1; return $0 }
                if call == 2, let me = box.withLock({ $0 }) {
                    me.value = [666]  // the same Local, the same key
                }
                return [1]
            }
            box.withLock { $0 = x }
            _ = await Task { () -> [Int] in
                x.value = [5]  // the task's own value
                _ = LocalsSnapshot().run { x.value }  // the view: the initializer's second call
                return x.value
            }.value
            exit(0)
        }
        let stderr = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(stderr.contains("touched the same Local for the same key"))
    }
    #endif

    /// A `reset()` of the same Local from its initializer is no touch of a value: the key has
    /// none yet. Inside a run, where the initializer runs for the run's view, the same holds:
    /// nothing stops, and the view shows the initializer's value.
    @Test("a view's initializer that resets its own Local does not stop the program")
    func viewInitializerResetsOwnLocal() async {
        let box = Protected<Local<[Int]>?>(nil)
        let x = Local<[Int]> {
            box.withLock { $0 }?.reset()
            return [1]
        }
        box.withLock { $0 = x }
        let (outside, inside) = await Task { () -> ([Int], [Int]) in
            let outside = x.value  // the initializer's first call: the reset finds nothing
            x.value = [5]
            return (outside, LocalsSnapshot().run { x.value })  // the view: its second call
        }.value
        #expect(outside == [1] && inside == [1])
    }
}
