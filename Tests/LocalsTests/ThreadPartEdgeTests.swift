import Foundation
import Locals
import Synchronization
import Testing

/// A value with unused bytes between its fields: a copy need not have the same bits.
private struct Padded: Sendable {
    var flag = false
    var tracked: Tracked?
    var number = 0
}

private final class Target: Sendable {}

/// A weak reference: once the object is gone, a copy reads nil where the original's bits do not.
private struct WeakHolder: Sendable {
    weak var object: Target?
    var number = 0
}

private final class Flag: Sendable {
    let value = Atomic<Bool>(false)
}

/// The kept `.thread` part where its rules are tested hardest, from an adversarial review:
/// values whose copies differ from them bit for bit, captures made in the middle of a change, a
/// deinit that writes the Local while a capture replaces the part, and a kept part alone in many
/// lists while another thread runs a snapshot that holds it.
@Suite("Snapshots of .thread values: the kept part at its edges")
struct ThreadPartEdgeTests {
    #if compiler(>=6.2)
    @Test("writes after captures of values whose copies differ bit for bit do not stop the program")
    func oddBits() async {
        await #expect(processExitsWith: .success) {
            let padded = Local(.thread) { Padded() }
            let existential = Local(.thread) { 0 as any Sendable }
            let weak = Local(.thread) { WeakHolder() }
            let done = DispatchSemaphore(value: 0)
            Thread {
                padded.value = Padded(flag: true, number: 1)
                existential.value = 1 as any Sendable
                do {
                    let object = Target()
                    weak.value = WeakHolder(object: object, number: 1)
                }
                _ = LocalsSnapshot.capture()
                _ = LocalsSnapshot.capture()
                padded.number = 2
                existential.value = 2 as any Sendable
                weak.number = 2
                done.signal()
            }.start()
            done.wait()
        }
    }
    #endif

    @Test("values whose copies differ bit for bit: each snapshot runs with its capture's value, and a replaced object goes")
    func oddBitsValuesAndLifetimes() async {
        let counter = DeinitCounter()
        let padded = Local(.thread) { Padded() }
        let existential = Local(.thread) { 0 as any Sendable }
        let (counts, last) = PartsThread.run { () -> ([Int], LocalsSnapshot) in
            var snapshots: [LocalsSnapshot] = []
            var counts: [Int] = []
            padded.value = Padded(flag: true, tracked: counter.make(1), number: 1)
            existential.value = counter.make(2) as any Sendable
            snapshots.append(LocalsSnapshot.capture())
            snapshots.append(LocalsSnapshot.capture())
            padded.number = 2
            existential.value = 3 as any Sendable
            snapshots.append(LocalsSnapshot.capture())
            counts.append(counter.count)  // both objects still held by the first two snapshots
            snapshots.removeFirst(2)
            counts.append(counter.count)  // the second object is gone; the last snapshot holds the first
            padded.tracked = nil
            counts.append(counter.count)
            return (counts, snapshots[0])
        }
        #expect(counts == [0, 1, 1])
        var held: LocalsSnapshot? = last
        let seen = PartsThread.run { [held] in held.unsafelyUnwrapped.run { "\(padded.number) \(existential.value)" } }
        #expect(seen == "2 3")
        held = nil
        _ = consume last
        // Nothing holds the first object any more. (Waited for: the thread that ran the snapshot
        // lets go of its closure, and so of the snapshot, only as it exits.)
        let released = await counter.wait(untilAtLeast: 2)
        #expect(released)
    }

    @Test("a capture inside update, then a change in the same body: the replaced object goes when update returns")
    func captureInsideUpdate() {
        let counter = DeinitCounter()
        let local = Local(.thread) { Sample() }
        let result = PartsThread.run { () -> ([Int], [String]) in
            var counts: [Int] = []
            var inside: LocalsSnapshot?
            local.tracked = counter.make(1)
            local.update { value in
                inside = LocalsSnapshot.capture()  // the value as update has it now
                value.tracked = nil
                value.simple = "changed inside update"
            }
            counts.append(counter.count)  // the snapshot holds the object
            inside = nil
            counts.append(counter.count)
            local.update { value in
                _ = LocalsSnapshot.capture()  // taken and dropped at once
                value.tracked = counter.make(2)
            }
            local.update { value in
                _ = LocalsSnapshot.capture()
                value.tracked = nil
            }
            counts.append(counter.count)
            local.simple = "after"
            let after = LocalsSnapshot.capture()
            let seen = PartsThread.run { after.run { [local.simple, "\(local.tracked == nil)"] } }
            withExtendedLifetime(inside) {}
            return (counts, seen)
        }
        #expect(result.0 == [0, 1, 2])
        #expect(result.1 == ["after", "true"])
    }

    @Test("a deinit that writes the Local, run when an update drops the part a capture in it kept")
    func deinitWritesWhilePartGoes() {
        let counter = DeinitCounter()
        let local = Local(.thread) { Sample() }
        let seen = PartsThread.run { () -> [String] in
            local.tracked = Tracked(tag: 1, counter: counter, onDeinit: { local.simple = "from deinit" })
            local.update { value in
                _ = LocalsSnapshot.capture()
                value.tracked = nil
            }
            let first = local.simple
            let snapshot = LocalsSnapshot.capture()
            local.late = "after"
            let second = LocalsSnapshot.capture()
            return [first]
                + PartsThread.run { [snapshot.run { local.simple }, second.run { "\(local.simple) \(local.late)" }] }
        }
        #expect(counter.count == 1)
        #expect(seen == ["from deinit", "from deinit", "from deinit after"])
    }

    @Test("a kept part alone in a list is never written by later captures while another thread runs a snapshot with it")
    func sharedPartAloneIsNotWritten() {
        let local = Local(.thread) { 0 }
        let stop = Flag()
        let wrong = Flag()
        PartsThread.run {
            local.value = 1
            let first = LocalsSnapshot.capture()  // the kept part, alone in its list
            let reader = DispatchSemaphore(value: 0)
            Thread {
                while !stop.value.load(ordering: .relaxed) {
                    if first.run({ local.value }) != 1 {
                        wrong.value.store(true, ordering: .relaxed)
                    }
                }
                reader.signal()
            }.start()
            for _ in 0..<20_000 {
                _ = LocalsSnapshot.capture()  // the same kept part, alone again: under Thread Sanitizer, a write to it races
            }
            stop.value.store(true, ordering: .relaxed)
            reader.wait()
        }
        let sawWrong = wrong.value.load(ordering: .relaxed)
        #expect(!sawWrong)
    }
}
