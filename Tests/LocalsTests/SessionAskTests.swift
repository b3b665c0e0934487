import Foundation
import Locals
import Synchronization
import Testing

/// A discriminator type with no stored properties that counts its `currentKey` calls: a capture
/// asks it once for all its Locals.
private struct CountedSessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    static let calls = Atomic<Int>(0)

    var currentKey: String? {
        Self.calls.add(1, ordering: .relaxed)
        return Self.session
    }
}

/// A discriminator with a stored property that its key depends on: two instances may answer
/// differently, so a capture asks each of its Locals.
private struct SometimesSessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    let answers: Bool

    var currentKey: String? { answers ? Self.session : nil }
}

@Suite("A capture asks a discriminator type with no stored properties once for all its Locals")
struct SessionAskTests {
    @Test("outside any session, a capture asks once for 50 Locals of one discriminator type")
    func askedOnceOutsideSessions() async throws {
        let locals = (0..<50).map { _ in Local(CountedSessionDiscriminator()) { -1 } }
        CountedSessionDiscriminator.$session.withValue("a") {
            for local in locals { local.value = 1 }
        }
        // Where some other test's run has made a session current meanwhile (anywhere in the
        // process), a capture asks each Local again: try until a capture ran with none.
        var fewest = Int.max
        for _ in 0..<200 where fewest > 1 {
            let before = CountedSessionDiscriminator.calls.load(ordering: .relaxed)
            let snapshot = LocalsSnapshot.capture()
            fewest = min(fewest, CountedSessionDiscriminator.calls.load(ordering: .relaxed) - before)
            #expect(!snapshot.debugDescription.contains("CountedSessionDiscriminator"))
            if fewest > 1 { try await Task.sleep(for: .milliseconds(10)) }
        }
        #expect(fewest == 1)
        withExtendedLifetime(locals) {}
    }

    @Test("inside a session, a capture takes the session of every Local of the type, and a run elsewhere reads them")
    func everyLocalInsideASession() {
        let locals = (0..<20).map { _ in Local(CountedSessionDiscriminator()) { -1 } }
        let snapshot = CountedSessionDiscriminator.$session.withValue("b") { () -> LocalsSnapshot in
            for (index, local) in locals.enumerated() { local.value = index }
            return LocalsSnapshot.capture()
        }
        // (Not `snapshot.count`: the pool thread this test runs on may hold other tests' `.thread` values.)
        #expect(snapshot.debugDescription.components(separatedBy: "CountedSessionDiscriminator").count - 1 == locals.count)
        let inside = PartsThread.run { snapshot.run { locals.map(\.value) } }
        #expect(inside == Array(0..<locals.count))
    }

    @Test("a capture inside a run, where the discriminator has no key, takes the sessions the run made current")
    func captureInsideARun() {
        let first = Local(CountedSessionDiscriminator()) { -1 }
        let second = Local(CountedSessionDiscriminator()) { -1 }
        let outer = CountedSessionDiscriminator.$session.withValue("c") { () -> LocalsSnapshot in
            first.value = 1
            second.value = 2
            return LocalsSnapshot.capture()
        }
        // On a thread with no session: inside the run, the captured session is current, though the
        // discriminator says there is none; a capture there must still take it for both Locals.
        let inner = PartsThread.run { outer.run { LocalsSnapshot.capture() } }
        let seen = PartsThread.run { inner.run { [first.value, second.value] } }
        #expect(seen == [1, 2])
    }

    @Test("Locals of a discriminator with stored properties are asked one by one")
    func storedPropertiesAskedEach() {
        let silent = Local(SometimesSessionDiscriminator(answers: false)) { -1 }
        let answering = Local(SometimesSessionDiscriminator(answers: true)) { -1 }
        let snapshot = SometimesSessionDiscriminator.$session.withValue("d") { () -> LocalsSnapshot in
            answering.value = 4
            return LocalsSnapshot.capture()
        }
        // Made first, `silent` has no key: had the capture taken its answer for `answering`
        // too, the run would have no session for it, and read the initial value.
        let seen = PartsThread.run { snapshot.run { answering.value } }
        #expect(seen == 4)
        withExtendedLifetime(silent) {}
    }
}
