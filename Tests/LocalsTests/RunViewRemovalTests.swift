import Foundation
import Locals
import Testing

/// A synchronous run puts a Local in place at the running context's first access, on the cell
/// that access found. Where that cell is removed while the view is made (the initializer resets
/// the key, or another thread discards it), the view goes on the cell the context has then, once:
/// never a second view stacked under the first, which once left the cell pointing into a freed
/// frame after the run, nor another Local's view taken away in its place. Run under Address
/// Sanitizer in CI, which reports a read of freed memory.
@Suite("Snapshot runs: a cell removed while its view is made")
struct RunViewRemovalTests {
    /// Inside a synchronous run, the first access of a Local the snapshot holds nothing of puts a
    /// view from the initial value in place, running the initializer; here the initializer
    /// resets the key (as a `discard(key:)` from another thread would), which removes the cell the
    /// view was going on. The value read inside the run, and the task's own after it (read again
    /// after freed memory is reused), are the initializer's.
    @Test("a cell removed while a run's view runs the initializer leaves no dangling scope")
    func cellRemovedWhileRunViewInitializes() async {
        let result = await Task { () async -> Int in
            let box = InitializerBox()
            let local = Local<[Int]> {
                box.calls += 1
                if box.calls == 2 {
                    box.local!.reset()  // removes the running task's cell, as a discard would
                }
                return [7]
            }
            box.local = local
            _ = local.value  // a cell of the task's own, route .own, not listed
            let snapshot = LocalsSnapshot.capture()
            let inside = snapshot.run { local.value.first! }
            #expect(inside == 7)
            // After the run: the cell must not point into a freed frame.
            let after = local.value
            let big = (0..<64).map { _ in [Int](repeating: 0x5555, count: 16) }  // reuse freed memory
            withExtendedLifetime(big) {}
            return after.first! + local.value.first!
        }.value
        #expect(result == 14)
    }

    /// The same, with the removal coming from another thread (`discard(key:)` of the running
    /// task's key) while the view's initializer runs.
    @Test("a discard from another thread while a run's view runs the initializer leaves no dangling scope")
    func discardFromAnotherThreadWhileRunViewInitializes() async {
        let result = await Task { () async -> Int in
            let box = InitializerBox()
            let entered = DispatchSemaphore(value: 0)
            let proceed = DispatchSemaphore(value: 0)
            let local = Local<[Int]> {
                box.calls += 1
                if box.calls == 2 {
                    entered.signal()
                    proceed.wait()
                }
                return [7]
            }
            _ = local.value
            let me = TaskID.current!
            Thread.detachNewThread {
                entered.wait()
                local.discard(key: me)
                proceed.signal()
            }
            let snapshot = LocalsSnapshot.capture()
            let inside = snapshot.run { local.value.first! }
            #expect(inside == 7)
            let after = local.value
            let big = (0..<64).map { _ in [Int](repeating: 0x5555, count: 16) }
            withExtendedLifetime(big) {}
            return after.first! + local.value.first!
        }.value
        #expect(result == 14)
    }

    /// As `cellRemovedWhileRunViewInitializes`, with the initializer also touching another Local
    /// first, whose view takes the next undo record: the view given up leaves its own record
    /// empty, and the other Local's view is taken away when the run ends, as every view is.
    @Test("a cell removed while a run's view initializer touched another Local")
    func cellRemovedAfterInitializerTouchedAnotherLocal() async {
        let result = await Task { () async -> Int in
            let box = InitializerBox()
            let other = Local<[Int]> { [5] }
            let local = Local<[Int]> {
                box.calls += 1
                if box.calls == 2 {
                    _ = other.value  // its first access inside the run: a view, the next undo record
                    box.local!.reset()
                }
                return [7]
            }
            box.local = local
            _ = local.value
            let snapshot = LocalsSnapshot.capture()
            let inside = snapshot.run { local.value.first! + other.value.first! }
            #expect(inside == 12)
            other.value = [50]  // outside the run: must be the task's own value, not a leftover view
            let big = (0..<64).map { _ in [Int](repeating: 0x5555, count: 16) }
            withExtendedLifetime(big) {}
            return local.value.first! + other.value.first!
        }.value
        #expect(result == 57)
    }
}

private final class InitializerBox: @unchecked Sendable {
    var calls = 0
    var local: Local<[Int]>?
}
