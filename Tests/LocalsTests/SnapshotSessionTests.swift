import Foundation
import Locals
import Testing

/// A snapshot taken in session "A" of `cart`, which holds `"A's"` there.
private func snapshotOfSessionA(_ cart: Local<Sample>) -> LocalsSnapshot {
    SessionDiscriminator.$session.withValue("A") { () -> LocalsSnapshot in
        cart.simple = "A's"
        return LocalsSnapshot.capture()
    }
}

private func value(of cart: Local<Sample>, in session: String) -> String {
    SessionDiscriminator.$session.withValue(session) { cart.simple }
}

@Suite("Snapshots of sessions: inside run, the captured session is the only one")
struct SnapshotSessionTests {
    @Test("a run of a discarded session reads that session's fresh value, and its writes go to that session")
    func discardedSessionStaysItself() {
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("B") { cart.simple = "B's" }
        let snapshot = snapshotOfSessionA(cart)
        cart.discard(key: "A")
        let read = SessionDiscriminator.$session.withValue("B") {
            snapshot.run { () -> String in
                let read = cart.simple
                cart.simple = "written in A's run"
                return read
            }
        }
        #expect(read == Sample.initial)
        #expect(value(of: cart, in: "B") == "B's")
        #expect(value(of: cart, in: "A") == "written in A's run")
    }

    @Test("reset() inside a run drops the captured session, and the next write starts it over, in that session")
    func resetInsideRun() {
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("B") { cart.simple = "B's" }
        let snapshot = snapshotOfSessionA(cart)
        let seen = SessionDiscriminator.$session.withValue("B") {
            snapshot.run { () -> [String] in
                let before = cart.simple
                cart.reset()
                let afterReset = cart.simple
                cart.simple = "after reset"
                return [before, afterReset, cart.simple]
            }
        }
        #expect(seen == ["A's", Sample.initial, "after reset"])
        #expect(value(of: cart, in: "B") == "B's")
        #expect(value(of: cart, in: "A") == "after reset")
    }

    @Test("a snapshot taken inside a run of a discarded session carries that session on")
    func captureInsideRunOfDiscardedSession() {
        let cart = Local(SessionDiscriminator()) { Sample() }
        let snapshot = snapshotOfSessionA(cart)
        cart.discard(key: "A")
        let nested = SessionDiscriminator.$session.withValue("B") { snapshot.run { LocalsSnapshot.capture() } }
        SessionDiscriminator.$session.withValue("C") { nested.run { cart.simple = "nested" } }
        #expect(value(of: cart, in: "A") == "nested")
        #expect(value(of: cart, in: "B") == Sample.initial)
        #expect(value(of: cart, in: "C") == Sample.initial)
    }

    #if compiler(>=6.2)
    @Test("a completion handler run after its session was discarded, where no session is current, writes without stopping")
    func lateCompletionWithoutSession() async {
        await #expect(processExitsWith: .success) {
            let cart = Local(SessionDiscriminator()) { Sample() }
            let snapshot = snapshotOfSessionA(cart)
            cart.discard(key: "A")
            let done = DispatchSemaphore(value: 0)
            DispatchQueue.global().async {
                snapshot.run { cart.simple = "late" }  // no session is current on this thread
                done.signal()
            }
            done.wait()
            exit(value(of: cart, in: "A") == "late" ? 0 : 1)
        }
    }
    #endif

    @Test("a Task {} created inside a run belongs to the captured session after the run returns, whatever other threads do")
    func childKeepsTheRunsSession() async {
        // Session names of this test alone: every capture takes every live Local, so another
        // test's run of a session this Local has would be an unrelated run of this Local.
        let name = "child-\(UUID())"
        let (a, b, c) = ("\(name)-A", "\(name)-B", "\(name)-C")
        let cart = Local(SessionDiscriminator()) { Sample() }
        for session in [a, b, c] {
            SessionDiscriminator.$session.withValue(session) { cart.simple = session }
        }
        let snapshot = SessionDiscriminator.$session.withValue(a) { LocalsSnapshot.capture() }
        let otherSnapshot = SessionDiscriminator.$session.withValue(c) { LocalsSnapshot.capture() }

        /// What a child made inside a run of `snapshot` (called in session B) reads once the run has returned.
        func childRead() async -> String {
            let runReturned = DispatchSemaphore(value: 0)
            let child = SessionDiscriminator.$session.withValue(b) {
                snapshot.run {
                    Task { () -> String in
                        await withCheckedContinuation { continuation in
                            DispatchQueue.global().async {
                                runReturned.wait()
                                continuation.resume()
                            }
                        }
                        return cart.simple
                    }
                }
            }
            runReturned.signal()
            return await child.value
        }

        // Nothing else running.
        #expect(await childRead() == a)
        // An unrelated run of the same Local (session C), on a thread of its own, meanwhile.
        let otherRunning = DispatchSemaphore(value: 0)
        let otherMayEnd = DispatchSemaphore(value: 0)
        Thread {
            otherSnapshot.run {
                otherRunning.signal()
                otherMayEnd.wait()
            }
        }.start()
        otherRunning.wait()
        #expect(await childRead() == a)
        otherMayEnd.signal()
    }
}
