import Foundation
import Locals
import Synchronization
import Testing

/// A discriminator with no stored properties whose `currentKey`, once armed, makes a session
/// Local of another type (which changes the groups every capture asks) and captures a snapshot:
/// a capture in the middle of a capture on the same thread.
private struct CapturingDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    static let armed = Atomic<Bool>(false)
    static let made = Protected<[Local<Int>]>([])

    var currentKey: String? {
        if Self.armed.exchange(false, ordering: .relaxed) {
            let other = Local(CollidingDiscriminator()) { -1 }
            Self.made.withLock { $0.append(other) }
            _ = LocalsSnapshot.capture()
        }
        return Self.session
    }
}

/// Each thread keeps the list of session Locals that a capture asks, and reads it again only
/// after it changed: a change must reach the thread's next capture, and a capture made by a
/// discriminator in the middle of another must not replace the list the first is going through.
@Suite("Session Locals as a thread keeps them for its captures")
struct SessionGroupsKeptTests {
    @Test("session Locals made after a thread captured are in its next capture")
    func madeAfterACapture() {
        let values = PartsThread.run { () -> [Int] in
            SessionDiscriminator.$session.withValue("kept-a") {
                CollidingDiscriminator.$key.withValue(CollidingKey(id: 7)) {
                    let first = Local(SessionDiscriminator()) { -1 }
                    first.value = 1
                    let before = LocalsSnapshot.capture()
                    // One of a type the thread's list has, one of a type it has not.
                    let second = Local(SessionDiscriminator()) { -1 }
                    second.value = 2
                    let third = Local(CollidingDiscriminator()) { -1 }
                    third.value = 3
                    let after = LocalsSnapshot.capture()
                    return PartsThread.run {
                        before.run { [first.value, second.value, third.value] }
                            + after.run { [first.value, second.value, third.value] }
                    }
                }
            }
        }
        // Before: the two later Locals did not exist; inside its run they read as outside any
        // session (their initial value).
        #expect(values == [1, -1, -1, 1, 2, 3])
    }

    @Test("a capture that a discriminator makes in the middle of a capture leaves the first one whole")
    func captureInsideCurrentKey() {
        let values = PartsThread.run { () -> [Int] in
            CapturingDiscriminator.$session.withValue("kept-b") {
                let asked = Local(CapturingDiscriminator()) { -1 }
                asked.value = 10
                let plain = Local(SessionDiscriminator()) { -1 }
                _ = LocalsSnapshot.capture()  // the thread keeps the list as it is now
                CapturingDiscriminator.armed.store(true, ordering: .relaxed)
                let snapshot = SessionDiscriminator.$session.withValue("kept-c") { () -> LocalsSnapshot in
                    plain.value = 20
                    return LocalsSnapshot.capture()
                }
                return PartsThread.run { snapshot.run { [asked.value, plain.value] } }
            }
        }
        let stillArmed = CapturingDiscriminator.armed.load(ordering: .relaxed)
        #expect(!stillArmed, "the discriminator was never asked")
        #expect(CapturingDiscriminator.made.withLock { $0.count } == 1)
        #expect(values == [10, 20])
    }
}

private final class ChurnFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// Session Locals made and released on one thread while others capture with sessions bound.
@Suite("Session groups while Locals come and go")
struct SessionGroupsChurnTests {
    @Test("captures on several threads stay right while session Locals are made and released elsewhere")
    func churn() {
        let stable = Local(SessionDiscriminator()) { -1 }
        let stop = ChurnFlag()
        let bad = ChurnFlag()
        let done = DispatchSemaphore(value: 0)
        for index in 0..<2 {
            Thread {
                SessionDiscriminator.$session.withValue("churn-\(index)") {
                    stable.value = index
                    while !stop.value.load(ordering: .relaxed) {
                        let snapshot = LocalsSnapshot.capture()
                        let seen = PartsThread.run { snapshot.run { stable.value } }
                        if seen != index { bad.value.store(true, ordering: .relaxed) }
                    }
                }
                done.signal()
            }.start()
        }
        for round in 0..<300 {
            let made = (0..<3).map { _ in Local(SessionDiscriminator()) { round } }
            SessionDiscriminator.$session.withValue("maker") {
                for local in made { local.value = round + 1 }
                _ = LocalsSnapshot.capture()
            }
            withExtendedLifetime(made) {}
        }
        stop.value.store(true, ordering: .relaxed)
        done.wait()
        done.wait()
        let wrong = bad.value.load(ordering: .relaxed)
        #expect(!wrong)
    }
}
