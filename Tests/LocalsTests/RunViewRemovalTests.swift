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
    /// discards its own key (as a `discard(key:)` from another thread would), which removes the
    /// cell the view was going on. The value read inside the run, and the task's own after it (read again
    /// after freed memory is reused), are the initializer's.
    @Test("a cell removed while a run's view runs the initializer leaves no dangling scope")
    func cellRemovedWhileRunViewInitializes() async {
        let result = await Task { () async -> Int in
            // Removes the running task's cell, as a discard from another thread would.
            let local = Self.local { $0.discard(key: TaskID.current!) }
            _ = local.value  // a cell of the task's own, route .own, not listed
            return Self.runAndReadAfter(local)
        }.value
        #expect(result == 14)
    }

    /// The same, with the removal coming from another thread (`discard(key:)` of the running
    /// task's key) while the view's initializer runs.
    @Test("a discard from another thread while a run's view runs the initializer leaves no dangling scope")
    func discardFromAnotherThreadWhileRunViewInitializes() async {
        let result = await Task { () async -> Int in
            let entered = DispatchSemaphore(value: 0)
            let proceed = DispatchSemaphore(value: 0)
            let local = Self.local { _ in
                entered.signal()
                proceed.wait()
            }
            _ = local.value
            let me = TaskID.current!
            Thread.detachNewThread {
                entered.wait()
                local.discard(key: me)
                proceed.signal()
            }
            return Self.runAndReadAfter(local)
        }.value
        #expect(result == 14)
    }

    /// As `cellRemovedWhileRunViewInitializes`, with the initializer also touching another Local
    /// first, whose view takes the next undo record: the view given up leaves its own record
    /// empty, and the other Local's view is taken away when the run ends, as every view is.
    @Test("a cell removed while a run's view initializer touched another Local")
    func cellRemovedAfterInitializerTouchedAnotherLocal() async {
        let result = await Task { () async -> Int in
            let other = Local<[Int]> { [5] }
            let local = Self.local {
                _ = other.value  // its first access inside the run: a view, the next undo record
                $0.discard(key: TaskID.current!)
            }
            _ = local.value
            let snapshot = LocalsSnapshot.capture()
            let inside = snapshot.run { local.value.first! + other.value.first! }
            #expect(inside == 12)
            other.value = [50]  // outside the run: must be the task's own value, not a leftover view
            Self.reuseFreedMemory()
            return local.value.first! + other.value.first!
        }.value
        #expect(result == 57)
    }

    /// Another context's cell removed while the view is made (here by the view's own first-touch
    /// initializer, as a `discard(key:)` from another thread would at any moment) bumps the same
    /// removal epoch: the view is given up and put in place again on the running context's cell,
    /// which is the same cell. It must then go in place: the read inside the run sees the captured
    /// `.shared` scope, not the initial value.
    @Test("a view given up for another context's removal goes in place on the retry")
    func viewGivenUpForAnotherContextsRemoval() async {
        let hook = Protected<(@Sendable () -> Void)?>(nil)
        let local = Local<[Int]>(inheritance: .shared) {
            hook.withLock { $0 }?()
            return [1]
        }
        let me = TaskID.current!
        let snapshot = local.withValue(\.self, [7]) { LocalsSnapshot.capture() }
        hook.withLock { $0 = { local.discard(key: me) } }  // the capturing task's cell, not the runner's
        let seen = await Task.detached { snapshot.run { local.value.first! } }.value
        #expect(seen == 7)
    }
}

extension RunViewRemovalTests {
    /// A Local whose initializer gives `[7]`, and runs `second` (given the Local) first the second
    /// time it runs: the first is the task's own touch before the run, the second the run's view.
    /// A removal of another context's storage while a run's view is made (which makes the view
    /// give up and be put in place again) costs no second initializer call: the first access in
    /// the run is the running context's first touch, once. Both ways: the initializer runs for the
    /// view (the context had a cell, from a read before the run), or for the cell made in the run.
    @Test("a discard of another context's key while a run's view is made runs the initializer once", arguments: [true, false])
    func otherDiscardWhileRunViewInitializes(readBefore: Bool) async {
        let (inside, calls) = await Self.runWithOtherDiscard(initial: [7], readBefore: readBefore)
        #expect(inside == [7])
        #expect(calls == (readBefore ? 3 : 2))
        // The kept value is any value, nil included.
        let (insideNil, callsNil) = await Self.runWithOtherDiscard(initial: Int?.none, readBefore: readBefore)
        #expect(insideNil == nil)
        #expect(callsNil == (readBefore ? 3 : 2))
    }

    /// A Local whose initializer gives `initial`; another task touches it and stays alive; then a
    /// new task (having read it first if `readBefore`) reads it inside an empty snapshot's run,
    /// while its initialization there discards the other task's key. What the run read, and how
    /// many times the initializer ran in all.
    static func runWithOtherDiscard<Value: Sendable>(initial: Value, readBefore: Bool) async -> (Value, Int) {
        let calls = Protected(0)
        let box = OtherDiscardBox<Value>()
        let local = Local<Value> {
            let call = calls.withLock { $0 += 1; return $0 }
            // The running task's initialization in the run (the other task's was the first): the
            // other task's storage is removed meanwhile.
            if call == (readBefore ? 3 : 2), let local = box.local, let other = box.other {
                local.discard(key: other)
            }
            return initial
        }
        box.local = local
        // Another task with storage of its own, alive until the end.
        let touched = Signal()
        let release = Signal()
        let other = Task.detached {
            _ = local.value
            box.other = TaskID.current!
            touched.fire()
            await release.wait()
        }
        await touched.wait()
        let snapshot = LocalsSnapshot()  // holds nothing: the run's view starts from the initial value
        let inside = await Task.detached { () -> Value in
            if readBefore { _ = local.value }
            return snapshot.run { local.value }
        }.value
        release.fire()
        await other.value
        return (inside, calls.withLock { $0 })
    }

    static func local(onSecondInitialization second: @escaping @Sendable (Local<[Int]>) -> Void) -> Local<[Int]> {
        let box = InitializerBox()
        let local = Local<[Int]> {
            box.calls += 1
            if box.calls == 2 {
                second(box.local!)
            }
            return [7]
        }
        box.local = local
        return local
    }

    /// Runs a snapshot taken now and reads `local` inside (the initializer's 7), then reads it
    /// twice after the run, once after freed memory is reused: the sum of the reads after.
    static func runAndReadAfter(_ local: Local<[Int]>) -> Int {
        let snapshot = LocalsSnapshot.capture()
        let inside = snapshot.run { local.value.first! }
        #expect(inside == 7)
        // After the run: the cell must not point into a freed frame.
        let after = local.value
        reuseFreedMemory()
        return after.first! + local.value.first!
    }

    /// Allocates blocks of the size a frame had, so that a read of freed memory reads these.
    static func reuseFreedMemory() {
        let big = (0..<64).map { _ in [Int](repeating: 0x5555, count: 16) }
        withExtendedLifetime(big) {}
    }
}

private final class InitializerBox: @unchecked Sendable {
    var calls = 0
    var local: Local<[Int]>?
}

/// The Local and the other task of `runWithOtherDiscard`, set before the initializer needs them.
private final class OtherDiscardBox<Value: Sendable>: @unchecked Sendable {
    // @unchecked: set before the tasks that read them start.
    var local: Local<Value>?
    var other: TaskID?
}
