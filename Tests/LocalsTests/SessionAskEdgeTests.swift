import Foundation
import Synchronization
import Testing

import Locals

// Edge cases of how a capture asks session discriminators, of a snapshot's parts list and a
// thread's listing, and of recycled scope frames. Every test asserts something that must hold
// (whether or not another test's run made a session current meanwhile); none depends on timing.

// MARK: - Discriminators

private protocol EdgeKeySource {
    static var key: String? { get }
}

private enum EdgeNoKey: EdgeKeySource {
    static var key: String? { nil }
}

private enum EdgeTaskLocalKey: EdgeKeySource {
    @TaskLocal static var session: String?
    static var key: String? { session }
}

/// Generic, no stored properties: D<A> and D<B> must be separate groups.
private struct EdgeGenericDiscriminator<Source: EdgeKeySource>: Discriminator {
    var currentKey: String? { Source.key }
}

/// No stored properties, keyed by a task-local.
private struct EdgeAskDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    var currentKey: String? { Self.session }
}

/// A class: 8 bytes, so asked Local by Local; two instances answer differently.
private final class EdgeClassDiscriminator: Discriminator, Sendable {
    @TaskLocal static var session: String?
    let answers: Bool
    init(answers: Bool) { self.answers = answers }
    var currentKey: String? { answers ? Self.session : nil }
}

/// Keyed by another Local (a `.task` one).
private enum EdgeTenant {
    static let local = Local<String>(name: "edge-tenant") { "" }
}

private struct EdgeLocalKeyedDiscriminator: Discriminator {
    var currentKey: String? {
        let tenant = EdgeTenant.local.value
        return tenant.isEmpty ? nil : tenant
    }
}

/// Recursing: its currentKey reads a Local with this same discriminator.
private struct EdgeRecursingDiscriminator: Discriminator {
    var currentKey: String? { "k" + EdgeRecursing.local.value }
}

private enum EdgeRecursing {
    static let local = Local(EdgeRecursingDiscriminator()) { "x" }
}

/// No stored properties, `.perCarriedKey`.
private struct EdgeCarriedDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    var currentKey: String? { Self.session }
    var valueStorage: ValueStorage { .perCarriedKey }
}

/// A synchronous run, whatever the context (no async overload picked).
private func runSync<R>(_ snapshot: LocalsSnapshot, _ body: () -> R) -> R {
    snapshot.run(body)
}

private func captureUnder(_ session: String) -> LocalsSnapshot {
    EdgeAskDiscriminator.$session.withValue(session) { LocalsSnapshot.capture() }
}


@Suite("Edge cases: session asks, the parts list, recycled scope frames", .serialized)
struct SessionAskEdgeTests {
    // MARK: 1. Session asks

    @Test("generic discriminators D<A> and D<B> are asked separately")
    func genericDiscriminatorsSeparate() {
        // D<NoKey> first: were both in one group, its answer (no key) would skip D<TaskLocal>'s.
        let silent = Local(EdgeGenericDiscriminator<EdgeNoKey>()) { -1 }
        let keyed = Local(EdgeGenericDiscriminator<EdgeTaskLocalKey>()) { -1 }
        let snapshot = EdgeTaskLocalKey.$session.withValue("g") { () -> LocalsSnapshot in
            keyed.value = 7
            return LocalsSnapshot.capture()
        }
        let seen = PartsThread.run { snapshot.run { keyed.value } }
        #expect(seen == 7)
        withExtendedLifetime(silent) {}
    }

    @Test("a class-typed discriminator is asked Local by Local")
    func classDiscriminator() {
        let silent = Local(EdgeClassDiscriminator(answers: false)) { -1 }
        let answering = Local(EdgeClassDiscriminator(answers: true)) { -1 }
        let snapshot = EdgeClassDiscriminator.$session.withValue("c") { () -> LocalsSnapshot in
            answering.value = 4
            return LocalsSnapshot.capture()
        }
        #expect(PartsThread.run { snapshot.run { answering.value } } == 4)
        withExtendedLifetime(silent) {}
    }

    @Test("a group whose first Local died still takes the others, and a Local made after joins")
    func firstLocalDied() {
        var first: Local<Int>? = Local(EdgeAskDiscriminator()) { -1 }
        let second = Local(EdgeAskDiscriminator()) { -1 }
        EdgeAskDiscriminator.$session.withValue("f") { first!.value = 1 }
        first = nil
        let third = Local(EdgeAskDiscriminator()) { -1 }
        let snapshot = EdgeAskDiscriminator.$session.withValue("f") { () -> LocalsSnapshot in
            second.value = 2
            third.value = 3
            return LocalsSnapshot.capture()
        }
        let seen = PartsThread.run { snapshot.run { [second.value, third.value] } }
        #expect(seen == [2, 3])
        // Outside any key, nothing of the type is taken.
        let outside = PartsThread.run { LocalsSnapshot.capture() }
        #expect(!outside.debugDescription.contains("EdgeAskDiscriminator"))
    }

    @Test("a capture in a sync run's child task that outlives the run takes the run's session")
    func childOutlivesSyncRun() async {
        let local = Local(EdgeAskDiscriminator()) { -1 }
        let other = Local(EdgeAskDiscriminator()) { -1 }
        let outer = EdgeAskDiscriminator.$session.withValue("s1") { () -> LocalsSnapshot in
            local.value = 5
            other.value = 6
            return LocalsSnapshot.capture()
        }
        let go = Signal()
        let child = PartsThread.run {
            outer.run {
                Task { () -> LocalsSnapshot in
                    await go.wait()
                    // A key of its own here: the run's session must still win.
                    return captureUnder("elsewhere")
                }
            }
        }
        go.fire()  // the run has ended
        let inner = await child.value
        let seen = PartsThread.run { inner.run { [local.value, other.value] } }
        #expect(seen == [5, 6])
        // And without a key of its own.
        let go2 = Signal()
        let child2 = PartsThread.run {
            outer.run { Task { () -> LocalsSnapshot in await go2.wait(); return LocalsSnapshot.capture() } }
        }
        go2.fire()
        let inner2 = await child2.value
        #expect(PartsThread.run { () -> [Int] in inner2.run { [local.value, other.value] } } == [5, 6])
    }

    @Test("a capture inside an async run, and in its child tasks, takes the run's session")
    func captureInAsyncRun() async {
        let local = Local(EdgeAskDiscriminator()) { -1 }
        let outer = EdgeAskDiscriminator.$session.withValue("a1") { () -> LocalsSnapshot in
            local.value = 8
            return LocalsSnapshot.capture()
        }
        let go = Signal()
        let (direct, escaped) = await Task.detached { () -> (LocalsSnapshot, Task<LocalsSnapshot, Never>) in
            await outer.run { () async -> (LocalsSnapshot, Task<LocalsSnapshot, Never>) in
                await Task.yield()
                let here = LocalsSnapshot.capture()
                async let structured = LocalsSnapshot.capture()
                let fromGroup = await structured
                #expect(PartsThread.run { fromGroup.run { local.value } } == 8)
                let escaping = Task { () -> LocalsSnapshot in await go.wait(); return LocalsSnapshot.capture() }
                return (here, escaping)
            }
        }.value
        go.fire()
        let late = await escaped.value
        #expect(PartsThread.run { direct.run { local.value } } == 8)
        #expect(PartsThread.run { late.run { local.value } } == 8)
    }

    @Test("a discriminator keyed by another Local: a capture in a run of that Local's scope takes its session")
    func keyedByAnotherLocal() async {
        let session = Local(EdgeLocalKeyedDiscriminator()) { -1 }
        let plain = Local(EdgeLocalKeyedDiscriminator()) { -2 }
        let (early, late) = await Task.detached { () -> (LocalsSnapshot, LocalsSnapshot) in
            Self.tenantCaptures(session)
        }.value
        #expect(await Task.detached { runSync(late) { session.value } }.value == 9)
        // In a run of `early`, the tenant is t1 again: the key is asked there, no override exists.
        let inner = await Task.detached { () -> LocalsSnapshot in
            runSync(early) {
                #expect(session.value == 9)
                return LocalsSnapshot.capture()
            }
        }.value
        #expect(await Task.detached { runSync(inner) { [session.value, plain.value] } }.value == [9, -2])
    }

    @Test("Locals of one type made and dropped while captures run: a live Local's session is always taken")
    func churnWithCaptures() async {
        let kept = Local(EdgeAskDiscriminator()) { -1 }
        EdgeAskDiscriminator.$session.withValue("churn") { kept.value = 42 }
        let stop = Protected(false)
        let failures = Protected(0)
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                for _ in 0..<300 {
                    let made = (0..<4).map { _ in Local(EdgeAskDiscriminator()) { 0 } }
                    EdgeAskDiscriminator.$session.withValue("churn") { made.forEach { $0.value = 1 } }
                }
                stop.withLock { $0 = true }
            }
            group.addTask {
                var rounds = 0
                while !stop.withLock({ $0 }) || rounds < 50 {
                    rounds += 1
                    let snapshot = captureUnder("churn")
                    let here = runSync(snapshot, { kept.value })
                    let elsewhere = await Task.detached { runSync(snapshot) { kept.value } }.value
                    if here != 42 || elsewhere != 42 {
                        failures.withLock { $0 += 1 }
                    }
                }
            }
        }
        #expect(failures.withLock { $0 } == 0)
    }

    @Test(".perCarriedKey Locals of a type with no stored properties are not taken, and read the carried key")
    func carriedKeyNotAsked() {
        let carried = Local(EdgeCarriedDiscriminator()) { -1 }
        let snapshot = EdgeCarriedDiscriminator.$session.withValue("ck") { () -> LocalsSnapshot in
            carried.value = 3
            return LocalsSnapshot.capture()
        }
        #expect(!snapshot.debugDescription.contains("EdgeCarriedDiscriminator"))
    }

    #if compiler(>=6.2)
    @Test("a currentKey that reads a Local of its own discriminator still stops a capture with the message")
    func recursionStopsInCapture() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = EdgeRecursing.local  // made: the capture asks its type
            _ = LocalsSnapshot.capture()
        }
        let message = standardError(of: result)
        #expect(message.contains("EdgeRecursingDiscriminator.currentKey touched a Local"), "\(message)")
    }
    #endif

    // MARK: 2. Parts list

    @Test("two captures in one run, and the run's own snapshot, keep their parts (no node in two lists)")
    func partsNotShared() {
        let a = Local(.thread, name: "rv-parts-1") { -1 }
        let b = Local(EdgeAskDiscriminator(), name: "rv-parts-2") { -1 }
        let c = Local(.thread, name: "rv-parts-3") { -1 }
        let (first, second) = { () -> (LocalsSnapshot, LocalsSnapshot) in
            let outer = PartsThread.run { () -> LocalsSnapshot in
                EdgeAskDiscriminator.$session.withValue("p") { () -> LocalsSnapshot in
                    a.value = 1
                    b.value = 2
                    c.value = 3
                    return LocalsSnapshot.capture()
                }
            }
            let (first, second) = PartsThread.run { outer.run { (LocalsSnapshot.capture(), LocalsSnapshot.capture()) } }
            for snapshot in [outer, first, second] {
                #expect(PartsThread.run { () -> [Int] in snapshot.run { [a.value, b.value, c.value] } } == [1, 2, 3])
                #expect(snapshot.count == 3, "\(snapshot.debugDescription)")
            }
            return (first, second)
        }()
        // The outer snapshot is gone; the inner ones keep theirs.
        #expect(PartsThread.run { () -> [Int] in second.run { [a.value, b.value, c.value] } } == [1, 2, 3])
        #expect(PartsThread.run { () -> [Int] in first.run { [a.value, b.value, c.value] } } == [1, 2, 3])
    }

    @Test("parts of every kind, interleaved, come out in the Locals' order in a task")
    func interleavedOrderInTask() async {
        let l1 = Local(.thread, name: "rv-ord-1") { -1 }
        let l2 = Local(inheritance: .overlay, name: "rv-ord-2") { Sample() }
        let l3 = Local(EdgeAskDiscriminator(), name: "rv-ord-3") { -1 }
        let l4 = Local(.thread, name: "rv-ord-4") { -1 }
        let l5 = Local(inheritance: .overlay, name: "rv-ord-5") { Sample() }
        let l6 = Local(EdgeAskDiscriminator(), name: "rv-ord-6") { -1 }
        let snapshot = await l5.withValues({ $0.id = 50 }) {
            await l2.withValues({ $0.id = 20 }) {
                await Task { () -> LocalsSnapshot in
                    Self.interleavedWrites(l1, l2, l3, l4, l5, l6)
                }.value
            }
        }
        let lines = snapshot.debugDescription.split(separator: "\n")
        let positions = (1...6).map { n in lines.firstIndex { $0.contains("\"rv-ord-\(n)\"") } }
        #expect(positions.allSatisfy { $0 != nil }, "\(snapshot.debugDescription)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "\(snapshot.debugDescription)")
        let seen = PartsThread.run {
            snapshot.run { [l1.value, l2.count, l2.id, l3.value, l4.value, l5.count, l5.id, l6.value] }
        }
        #expect(seen == [1, 2, 20, 3, 4, 5, 50, 6])
    }

    @Test("a thread's listing after its dead Locals are pruned: live ones once each, new ones listed")
    func threadListPrune() {
        let counts = PartsThread.run { () -> [Int] in
            var locals: [Local<Int>?] = (0..<8).map { _ in Local(.thread) { -1 } }
            for (i, local) in locals.enumerated() { local!.value = i }
            var counts = [LocalsSnapshot.capture().count]  // 8
            for i in 0..<4 { locals[i] = nil }
            let ninth = Local(.thread) { -1 }
            ninth.value = 9  // the list is at 8: the 4 dead go
            counts.append(LocalsSnapshot.capture().count)  // 5
            // A reset makes the cell anew: listed once still.
            locals[4]!.reset()
            locals[4]!.value = 40
            counts.append(LocalsSnapshot.capture().count)  // 5
            // Many more, to prune again at 16, with the live ones kept.
            let more = (0..<12).map { _ in Local(.thread) { -1 } }
            for (i, local) in more.enumerated() { local.value = 100 + i }
            let snapshot = LocalsSnapshot.capture()
            counts.append(snapshot.count)  // 17
            let survivor = locals[4]!
            let seen = PartsThread.run { snapshot.run { survivor.value + ninth.value + more[11].value } }
            counts.append(seen)  // 40 + 9 + 111
            withExtendedLifetime((locals, ninth, more)) {}
            return counts
        }
        #expect(counts == [8, 5, 5, 17, 160])
    }

    @Test("a .task Local used on a plain thread: pruned with the .thread list's growth, listed again")
    func taskLocalsOnThread() {
        let seen = PartsThread.run { () -> [Int] in
            var dead: [Local<Int>?] = (0..<8).map { _ in Local { -1 } }
            for local in dead { local!.value = 1 }
            let live = Local { -1 }
            for i in 0..<8 { dead[i] = nil }
            live.value = 5
            let snapshot = LocalsSnapshot.capture()
            let threadOnes = (0..<9).map { _ in Local(.thread) { -1 } }
            for local in threadOnes { local.value = 2 }
            let second = LocalsSnapshot.capture()
            return [snapshot.count, second.count, PartsThread.run { second.run { live.value } }]
        }
        #expect(seen == [1, 10, 5])
    }

    // MARK: 3. Scope frame recycling

    @Test("nested scopes, over and over, on recycled frames: each restores what it replaced")
    func nestedRecycled() async {
        let local = Local { 0 }
        let ok = await Task.detached { Self.nestedBody(local) }.value
        #expect(ok)
    }

    @Test("an .overlay child's scopes on recycled frames restore its own writes")
    func overlayChildScopes() async {
        let local = Local(inheritance: .overlay) { Sample() }
        let seen = await local.withValues({ $0.id = 1 }) {
            await Task { Self.overlayChildBody(local) }.value
        }
        #expect(seen == [9, 8, 7, 1, 9, 8, 7, 1, 9, 8, 7, 1])
    }

    @Test("scopes inside a synchronous run's view, on recycled frames")
    func scopesInRunView() async {
        let local = Local { 0 }
        let snapshot = await Task.detached { Self.captureInScope(local, 5) }.value
        let seen = await Task.detached { Self.runViewBody(local, snapshot) }.value
        #expect(seen == [5, 7, 6, 5, 0, 5, 7, 6, 5, 0, 5, 7, 6, 5, 0])
    }

    @Test("a scope value whose deinit opens a scope on the same Local while its frame is recycled")
    func deinitOpensScopeDuringRecycle() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let inner = Protected<[Int]>([])
        let seen = await Task.detached { Self.deinitBody(local, counter, inner) }.value
        #expect(seen == [0, -1, 1, -1, 2, -1])
        #expect(inner.withLock { $0 } == [200, 100, 201, 101, 202, 102])
    }

    // MARK: Synchronous bodies (no async overloads picked)

    private static func tenantCaptures(_ session: Local<Int>) -> (LocalsSnapshot, LocalsSnapshot) {
        EdgeTenant.local.withValues({ $0 = "t1" }) {
            let early = LocalsSnapshot.capture()  // the tenant scope only: no session yet
            session.value = 9
            return (early, LocalsSnapshot.capture())
        }
    }

    private static func interleavedWrites(
        _ l1: Local<Int>, _ l2: Local<Sample>, _ l3: Local<Int>, _ l4: Local<Int>, _ l5: Local<Sample>, _ l6: Local<Int>
    ) -> LocalsSnapshot {
        EdgeAskDiscriminator.$session.withValue("ord") { () -> LocalsSnapshot in
            l6.value = 6
            l5.count = 5  // an .overlay child's own write
            l4.value = 4
            l3.value = 3
            l2.count = 2
            l1.value = 1
            return LocalsSnapshot.capture()
        }
    }

    private static func nestedBody(_ local: Local<Int>) -> Bool {
        var ok = true
        for round in 0..<5 {
            local.withValue(\.self, 1) {
                local.withValue(\.self, 2) {
                    local.withValue(\.self, 3) { ok = ok && local.value == 3 }
                    ok = ok && local.value == 2
                }
                ok = ok && local.value == 1
                let kept = LocalsSnapshot.capture()  // shares this frame: not recycled
                local.withValue(\.self, 4) { ok = ok && local.value == 4 }
                ok = ok && local.value == 1 && runSync(kept) { local.value } == 1
            }
            ok = ok && local.value == 0
            local.value = round
            local.withValue(\.self, 10) { ok = ok && local.value == 10 }
            ok = ok && local.value == round
            local.value = 0
        }
        return ok
    }

    private static func overlayChildBody(_ local: Local<Sample>) -> [Int] {
        local.count = 7  // the child's own write, over the scope
        var seen: [Int] = []
        for _ in 0..<3 {
            local.withValues({ $0.count = 8 }) {
                local.withValues({ $0.count = 9 }) { seen.append(local.count) }
                seen.append(local.count)
            }
            seen.append(local.count)
            seen.append(local.id)
        }
        return seen
    }

    private static func captureInScope(_ local: Local<Int>, _ value: Int) -> LocalsSnapshot {
        local.withValue(\.self, value) { LocalsSnapshot.capture() }
    }

    private static func runViewBody(_ local: Local<Int>, _ snapshot: LocalsSnapshot) -> [Int] {
        var seen: [Int] = []
        for _ in 0..<3 {
            runSync(snapshot) {
                seen.append(local.value)
                local.withValue(\.self, 6) {
                    local.withValue(\.self, 7) { seen.append(local.value) }
                    seen.append(local.value)
                }
                seen.append(local.value)
            }
            seen.append(local.value)
        }
        return seen
    }

    private static func deinitBody(_ local: Local<Sample>, _ counter: DeinitCounter, _ inner: Protected<[Int]>) -> [Int] {
        var seen: [Int] = []
        for round in 0..<3 {
            local.withValues({
                $0.id = round
                $0.tracked = Tracked(tag: round, counter: counter) {
                    local.withValues({ $0.id = 100 + round }) {
                        local.withValues({ $0.id = 200 + round }) { inner.withLock { $0.append(local.id) } }
                        inner.withLock { $0.append(local.id) }
                    }
                }
            }) { seen.append(local.id) }
            seen.append(local.id)
        }
        return seen
    }
}
