import Foundation
import Locals
import Synchronization
import Testing

// Edge cases of snapshots: sessions whose key is carried, carried contexts registered while
// captures run, and a reset in nested runs.

private struct EdgeCarriedDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    static let registered: Void = LocalsSnapshot.carry($session)
    var currentKey: String? { Self.session }
    var valueStorage: ValueStorage { .perCarriedKey }
}

private struct EdgeProbe: Sendable { var x = -1 }

private final class EdgeRaceState: Sendable {
    let done = Atomic<Bool>(false)
    let bad = Atomic<Int>(0)
}

@Suite("Snapshot edge cases: carried keys and contexts, resets in nested runs", .serialized)
struct SnapshotCarryEdgeTests {
    init() { EdgeCarriedDiscriminator.registered }

    // MARK: 1. .perCarriedKey

    @Test("perCarriedKey: nested runs, an empty snapshot inside a run, and a capture inside it")
    func nestedAndEmpty() async {
        let cart = Local(EdgeCarriedDiscriminator()) { "initial" }
        let a = EdgeCarriedDiscriminator.$session.withValue("A") { () -> LocalsSnapshot in
            cart.value = "A's"
            return LocalsSnapshot.capture()
        }
        EdgeCarriedDiscriminator.$session.withValue("B") { cart.value = "B's" }
        let seen = await Task.detached { () -> [String] in
            EdgeCarriedDiscriminator.$session.withValue("B") {
                var seen: [String] = []
                a.run {
                    seen.append(cart.value)  // A's
                    let inner = LocalsSnapshot.capture()
                    LocalsSnapshot().run {
                        seen.append(cart.value)  // initial: no key
                        seen.append(cart.hasCurrentKey ? "key" : "nokey")
                        let emptyCapture = LocalsSnapshot.capture()
                        inner.run { seen.append(cart.value) }  // A's
                        emptyCapture.run { seen.append(cart.value) }  // initial
                    }
                    seen.append(cart.value)  // A's
                }
                seen.append(cart.value)  // B's
                return seen
            }
        }.value
        #expect(seen == ["A's", "initial", "nokey", "A's", "initial", "A's", "B's"])
    }

    @Test("perCarriedKey: scopes, discard and children inside an async run")
    func scopesDiscardChildren() async {
        let cart = Local(EdgeCarriedDiscriminator()) { "initial" }
        let a = EdgeCarriedDiscriminator.$session.withValue("A") { () -> LocalsSnapshot in
            cart.value = "A's"
            return LocalsSnapshot.capture()
        }
        let seen = await Task.detached { () -> [String] in
            await EdgeCarriedDiscriminator.$session.withValue("B") { () async -> [String] in
                var seen: [String] = []
                await a.run { () async in
                    seen.append(cart.value)
                    let scoped = await cart.withValues({ $0 = "scoped" }) { () async -> [String] in
                        [cart.value, await Task { cart.value }.value]
                    }
                    seen += scoped
                    seen.append(cart.value)
                    cart.discard(key: "A")
                    seen.append(cart.value)
                    cart.value = "A again"
                }
                seen.append(cart.value)
                return seen
            }
        }.value
        let outsideA = EdgeCarriedDiscriminator.$session.withValue("A") { cart.value }
        #expect(seen == ["A's", "scoped", "scoped", "A's", "initial", "initial"])
        #expect(outsideA == "A again")
    }

    // MARK: 2. carried registry

    @Test("registrations racing captures: each capture binds a prefix of the registrations, each once")
    func registrationRace() async {
        let locals = (0..<8).map { _ in TaskLocal<Int>(wrappedValue: -1) }
        let state = EdgeRaceState()
        await withTaskGroup(of: Void.self) { group in
            for t in 0..<4 {
                group.addTask {
                    for i in stride(from: t, to: 8, by: 4) {
                        LocalsSnapshot.carry(locals[i])
                        LocalsSnapshot.carry(locals[i])
                    }
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    while !state.done.load(ordering: .relaxed) {
                        let snapshot = bindAll(locals, 0) { LocalsSnapshot.capture() }
                        let carriedLines = snapshot.debugDescription.split(separator: "\n")
                            .filter { $0.contains("TaskLocal<Int> = ") }
                        let seen = snapshot.run { locals.map { $0.get() } }
                        let bound = seen.filter { $0 == 7 }.count
                        if bound > carriedLines.count { state.bad.add(1, ordering: .relaxed) }
                        await Task.yield()
                    }
                }
            }
            // Let registrations finish, then stop the capturers.
            for _ in 0..<200 { await Task.yield() }
            group.addTask {
                try? await Task.sleep(for: .milliseconds(200))
                state.done.store(true, ordering: .relaxed)
            }
        }
        let final = bindAll(locals, 0) { LocalsSnapshot.capture() }
        let seen = final.run { locals.map { $0.get() } }
        #expect(seen == Array(repeating: 7, count: 8))
        #expect(state.bad.load(ordering: .relaxed) == 0)
        let lines = final.debugDescription.split(separator: "\n").filter { $0.contains("TaskLocal<Int> = 7") }
        #expect(lines.count == 8)
    }

    // MARK: 3. reset inside nested runs

    @Test("reset in a nested run lists only while that run lasts")
    func resetNested() async {
        let probe = Local { EdgeProbe() }
        let snapshot = await Task.detached { probe.withValue(\.x, 7) { LocalsSnapshot.capture() } }.value
        let seen = await Task.detached { () -> [Int] in
            var seen: [Int] = []
            snapshot.run {
                seen.append(probe.x)  // 7, the outer view
                snapshot.run {
                    probe.reset()
                    LocalsSnapshot.capture().run { seen.append(probe.x) }  // -1
                }
                seen.append(probe.x)  // 7
                LocalsSnapshot.capture().run { seen.append(probe.x) }  // 7
                probe.reset()
                LocalsSnapshot.capture().run { seen.append(probe.x) }  // -1
            }
            seen.append(probe.x)  // -1: the task's own initial
            probe.withValue(\.x, 3) {
                probe.reset()  // the owner's own scope, outside any run
                seen.append(probe.x)
            }
            LocalsSnapshot.capture().run { seen.append(probe.x) }
            return seen
        }.value
        #expect(seen == [7, -1, 7, 7, -1, -1, -1, -1])
    }

}

private func bindAll<R>(_ locals: [TaskLocal<Int>], _ index: Int, _ body: () -> R) -> R {
    guard index < locals.count else { return body() }
    return locals[index].withValue(7) { bindAll(locals, index + 1, body) }
}

// MARK: 2b. isolation and order of carried bindings

private enum EdgeShared {
    @TaskLocal static var value: String = "default"
}

/// Two contexts that bind the same task-local: the one registered later is bound inside.
private struct EdgeBinder: CarriedContext {
    let tag: String
    var currentValue: String { EdgeShared.value + "@" + tag }
    func withValue(_ value: String, operation: () -> Void) {
        EdgeShared.$value.withValue(value, operation: operation)
    }
    func withValue(_ value: String, isolation: isolated (any Actor)?, operation: () async -> Void) async {
        await EdgeShared.$value.withValue(value, operation: operation, isolation: isolation)
    }
}

private actor EdgeActor {
    var touched = 0
    func runIn(_ snapshot: LocalsSnapshot) async -> String {
        await snapshot.run { () async -> String in
            self.assertIsolated()
            touched += 1
            return EdgeShared.value
        }
    }
}

@Suite("Carried contexts: the order and isolation of their bindings", .serialized)
struct CarriedBindingOrderTests {
    @Test("sync and async runs bind carried contexts in the same order, on the caller's actor")
    func orderAndIsolation() async {
        LocalsSnapshot.carry(EdgeBinder(tag: "first"))
        LocalsSnapshot.carry(EdgeBinder(tag: "second"))
        LocalsSnapshot.carry(EdgeBinder(tag: "third"))
        let snapshot = EdgeShared.$value.withValue("v") { LocalsSnapshot.capture() }
        let sync = snapshot.run { EdgeShared.value }
        let async = await snapshot.run { () async -> String in EdgeShared.value }
        let actor = EdgeActor()
        let onActor = await actor.runIn(snapshot)
        #expect(sync == async)
        #expect(onActor == sync)
        #expect(sync == "v@third")
        #expect(await actor.touched == 1)
    }
}
