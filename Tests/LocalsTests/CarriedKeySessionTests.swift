import Foundation
import Locals
import Synchronization
import Testing

/// A discriminator whose key comes from a `@TaskLocal` that snapshots carry, and that says so
/// (`.perCarriedKey`); it counts its `currentKey` calls.
private struct CarriedSessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    static let calls = Atomic<Int>(0)
    /// Registered once, before any snapshot of these tests is taken.
    static let registered: Void = LocalsSnapshot.carry($session)

    var currentKey: String? {
        Self.calls.add(1, ordering: .relaxed)
        return Self.session
    }
    var valueStorage: ValueStorage { .perCarriedKey }
}

/// The same key, kept per key as usual (`.perKey`): a capture asks it for its key.
private struct AskedSessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    static let calls = Atomic<Int>(0)

    var currentKey: String? {
        Self.calls.add(1, ordering: .relaxed)
        return Self.session
    }
}

/// A snapshot taken in session "A" of `cart`, which holds `"A's"` there.
private func snapshotOfSessionA(_ cart: Local<String>) -> LocalsSnapshot {
    CarriedSessionDiscriminator.$session.withValue("A") { () -> LocalsSnapshot in
        cart.value = "A's"
        return LocalsSnapshot.capture()
    }
}

/// How many times `calls` grew while `body` ran.
private func callsDuring(_ calls: borrowing Atomic<Int>, _ body: () -> Void) -> Int {
    let before = calls.load(ordering: .relaxed)
    body()
    return calls.load(ordering: .relaxed) - before
}

@Suite("Sessions whose key snapshots carry (.perCarriedKey)", .serialized)
struct CarriedKeySessionTests {
    init() { CarriedSessionDiscriminator.registered }

    @Test("the storage is described as .perCarriedKey")
    func description() {
        #expect(ValueStorage.perCarriedKey.description == ".perCarriedKey")
        #expect(ValueStorage.perCarriedKey != .perKey)
    }

    @Test("a capture asks no .perCarriedKey discriminator for its key, and asks a .perKey one")
    func captureAsksNone() {
        let carried = (0..<50).map { _ in Local(CarriedSessionDiscriminator()) { "initial" } }
        let asked = Local(AskedSessionDiscriminator()) { "initial" }
        CarriedSessionDiscriminator.$session.withValue("A") {
            for local in carried { local.value = "A's" }
        }
        AskedSessionDiscriminator.$session.withValue("A") { asked.value = "A's" }
        let carriedCalls = callsDuring(CarriedSessionDiscriminator.calls) {
            CarriedSessionDiscriminator.$session.withValue("A") { _ = LocalsSnapshot.capture() }
        }
        let askedCalls = callsDuring(AskedSessionDiscriminator.calls) {
            AskedSessionDiscriminator.$session.withValue("A") { _ = LocalsSnapshot.capture() }
        }
        #expect(carriedCalls == 0)
        #expect(askedCalls >= 1)  // the control: the count sees a capture's question
        withExtendedLifetime((carried, asked)) {}
    }

    @Test("inside a run on another thread, the captured session is the current one, for reads and writes")
    func runSeesCapturedSession() async {
        let cart = Local(CarriedSessionDiscriminator()) { "initial" }
        let snapshot = snapshotOfSessionA(cart)
        CarriedSessionDiscriminator.$session.withValue("B") { cart.value = "B's" }
        let seen = await onNewThread { () -> [String] in
            let outside = cart.value  // no session here: the initializer's value, not stored
            let inside = snapshot.run { () -> String in
                let read = cart.value
                cart.value = "written in A's run"
                return read
            }
            return [outside, inside, cart.value]
        }
        #expect(seen == ["initial", "A's", "initial"])
        #expect(CarriedSessionDiscriminator.$session.withValue("A") { cart.value } == "written in A's run")
        #expect(CarriedSessionDiscriminator.$session.withValue("B") { cart.value } == "B's")
    }

    @Test("a run after the session was discarded starts it over under the same key")
    func runAfterDiscard() async {
        let cart = Local(CarriedSessionDiscriminator()) { "initial" }
        let snapshot = snapshotOfSessionA(cart)
        cart.discard(key: "A")
        let read = await onNewThread {
            snapshot.run { () -> String in
                let read = cart.value
                cart.value = "late"
                return read
            }
        }
        #expect(read == "initial")
        #expect(CarriedSessionDiscriminator.$session.withValue("A") { cart.value } == "late")
    }

    @Test("an empty snapshot's run has no session: no caller's session is seen")
    func emptySnapshotHasNoSession() {
        let cart = Local(CarriedSessionDiscriminator()) { "initial" }
        let (inside, hasKey) = CarriedSessionDiscriminator.$session.withValue("A") { () -> (String, Bool) in
            cart.value = "A's"
            return LocalsSnapshot().run { (cart.value, cart.hasCurrentKey) }
        }
        #expect(inside == "initial")
        #expect(!hasKey)
    }

    @Test("a scope inside a run changes the captured session and restores it")
    func scopeInsideRun() async {
        let cart = Local(CarriedSessionDiscriminator()) { "initial" }
        let snapshot = snapshotOfSessionA(cart)
        let seen = await onNewThread {
            snapshot.run { () -> [String] in
                let inScope = cart.withValue(\.self, "scoped") { cart.value }
                return [inScope, cart.value]
            }
        }
        #expect(seen == ["scoped", "A's"])
        #expect(CarriedSessionDiscriminator.$session.withValue("A") { cart.value } == "A's")
    }
}
