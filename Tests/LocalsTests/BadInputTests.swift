import Foundation
import Locals
import Testing

// Bad input and corner cases: initializers that reach their own Local, deinits and `update` bodies
// that touch the Local being changed, slow and busy discriminators, 1 MiB values, colliding hashes,
// unknown keys, and throws and cancellation deep in nested scopes.

/// Two Locals whose initializers touch each other: A's reaches A again through B's, for the same key.
enum Cycle {
    struct A: Sendable { var name = "a" }
    struct B: Sendable { var name = "b" }
    static let a: Local<A> = Local { A(name: "a after " + Cycle.b.name) }
    static let b: Local<B> = Local { B(name: "b after " + Cycle.a.name) }
}

/// Where a value is overwritten while its deinit touches the same Local.
enum OverwriteSite: String, Codable, CaseIterable, Sendable, CustomTestStringConvertible {
    case ownWrite = "the task's own value, by a write"
    case ownUpdate = "the task's own value, by update"
    case scopeWrite = "a scope's value, by its owner's write"
    case scopeUpdate = "a scope's value, by its owner's update"
    case scopeWholeValue = "a scope's value, by its owner assigning value"
    case sharedChildWrite = "a .shared scope's value, by a child's write"
    case overlayChildWrite = "an .overlay child's own layer, by its write"
    case sessionWrite = "a session's value, by a write"
    case threadWrite = "a .thread Local's value, by a write"

    var testDescription: String { rawValue }

    /// Stores an object whose deinit reads and writes `local`, overwrites it, and checks that the
    /// deinit ran and its write landed.
    static func run(_ site: OverwriteSite) async {
        @Sendable func touching(_ local: Local<Sample>) -> Tracked {
            Tracked(tag: 0, counter: DeinitCounter()) {
                _ = local.simple
                local.count += 1
            }
        }
        let local = Local { Sample() }
        switch site {
        case .ownWrite:
            local.tracked = touching(local)
            local.tracked = nil
            precondition(local.count == 1)
        case .ownUpdate:
            local.tracked = touching(local)
            local.update { $0.tracked = nil }
            precondition(local.count == 1)
        case .scopeWrite:
            local.withScope {
                local.tracked = touching(local)
                local.tracked = nil
                precondition(local.count == 1)
            }
        case .scopeUpdate:
            local.withScope {
                local.tracked = touching(local)
                local.update { $0.tracked = nil }
                precondition(local.count == 1)
            }
        case .scopeWholeValue:
            local.withScope {
                local.tracked = touching(local)
                local.value = Sample()
                precondition(local.count == 1)
            }
        case .sharedChildWrite:
            await local.withScope(inheritance: .shared) {
                local.tracked = touching(local)
                await Task { local.tracked = nil }.value
                precondition(local.count == 1)
            }
        case .overlayChildWrite:
            await local.withScope(inheritance: .overlay) {
                await Task {
                    local.tracked = touching(local)
                    local.tracked = nil
                    precondition(local.count == 1)
                }.value
            }
        case .sessionWrite:
            // (Not `update`: its body runs under a shared value's lock, and the docs ask it not
            // to touch the same Local; a deinit it triggers is part of it.)
            let session = Local(SessionDiscriminator()) { Sample() }
            SessionDiscriminator.$session.withValue("s") {
                session.tracked = touching(session)
                session.tracked = nil
                precondition(session.count == 1)
            }
        case .threadWrite:
            let thread = Local(.thread) { Sample() }
            let done = onNewThreadBlocking {
                thread.tracked = touching(thread)
                thread.tracked = nil
                return thread.count
            }
            precondition(done == 1)
        }
    }
}

/// Where `update`'s body touches the same Local. The docs ask the body not to touch the Local
/// where other tasks share the value (`.shared` scopes, sessions): there it reads and writes the
/// value as it stood before, and what it wrote may be lost, but nothing hangs or crashes (see "What
/// is atomic" in the Lifetimes and Guarantees article).
enum UpdateSite: String, Codable, CaseIterable, Sendable, CustomTestStringConvertible {
    case ownValue = "a task's own value"
    case copyScope = "the owner of a .copy scope"
    case overlayScope = "the owner of an .overlay scope"
    case freshScope = "the owner of a .fresh scope"
    case copyChild = "a child of a .copy scope"
    case overlayChild = "a child of an .overlay scope"
    case sharedScope = "the owner of a .shared scope (misuse)"
    case sharedChild = "a child of a .shared scope (misuse)"
    case session = "a session (misuse)"
    case thread = "a .thread Local"
    case threadFallback = "a .task Local on a plain thread"

    var testDescription: String { rawValue }

    static func run(_ site: UpdateSite) async {
        /// Reads the Local inside `update`, then writes it too; returns what the update made.
        @Sendable func touchInUpdate(_ local: Local<Sample>) -> Int {
            let made = local.update { value in
                value.count = local.id + 1
                return value.count
            }
            local.update { value in
                local.simple = "nested"
                value.id = 7
            }
            precondition(local.id == 7 && [Sample.initial, "nested"].contains(local.simple))
            local.simple = "after"
            precondition(local.simple == "after")
            return made
        }
        let local = Local { Sample() }
        let result: Int
        switch site {
        case .ownValue:
            result = touchInUpdate(local)
        case .copyScope, .overlayScope, .freshScope:
            let policy: Inheritance = site == .copyScope ? .copy : site == .overlayScope ? .overlay : .fresh
            result = local.withScope(inheritance: policy) { touchInUpdate(local) }
        case .copyChild, .overlayChild, .sharedChild:
            let policy: Inheritance = site == .copyChild ? .copy : site == .overlayChild ? .overlay : .shared
            result = await local.withScope(inheritance: policy) { await Task { touchInUpdate(local) }.value }
        case .sharedScope:
            result = local.withScope(inheritance: .shared) { touchInUpdate(local) }
        case .session:
            let session = Local(SessionDiscriminator()) { Sample() }
            result = SessionDiscriminator.$session.withValue("s") { touchInUpdate(session) }
        case .thread:
            let thread = Local(.thread) { Sample() }
            result = onNewThreadBlocking { touchInUpdate(thread) } ?? -1
        case .threadFallback:
            result = onNewThreadBlocking { touchInUpdate(local) } ?? -1
        }
        precondition(result == 0)
    }
}

/// A discriminator whose `currentKey` is slow: for the key "slow" it blocks until `gate` opens.
struct SlowKeyDiscriminator: Discriminator {
    @TaskLocal static var key: String?
    let gate: Gate

    var currentKey: String? {
        guard let key = Self.key else { return nil }
        if key == "slow" {
            gate.entered.open()
            gate.fastDone.wait()
        }
        return key
    }

    /// Opens once; waits return at once after that. The timeout only bounds a failure.
    final class Latch: @unchecked Sendable {
        // @unchecked: `isOpen` and `timedOut` are only touched while `condition` is locked.
        private let condition = NSCondition()
        private var isOpen = false
        private(set) var timedOut = false

        func open() {
            condition.lock()
            isOpen = true
            condition.broadcast()
            condition.unlock()
        }

        func wait(timeout: TimeInterval = 20) {
            condition.lock()
            let deadline = Date(timeIntervalSinceNow: timeout)
            while !isOpen {
                if !condition.wait(until: deadline) {
                    timedOut = true
                    break
                }
            }
            condition.unlock()
        }
    }

    final class Gate: Sendable {
        let entered = Latch()
        let fastDone = Latch()
    }
}

/// A discriminator whose `currentKey` does a lot of work on every call.
struct BusyKeyDiscriminator: Discriminator {
    @TaskLocal static var key: Int?

    var currentKey: Int? {
        var hasher = Hasher()
        for i in 0..<2_000 { hasher.combine(i) }
        return hasher.finalize() == 0 ? Self.key : Self.key
    }
}

/// A value of 1 MiB.
struct Big: Sendable {
    static let size = 1 << 20
    var bytes = [UInt8](repeating: 0, count: Big.size)
    var tracked: Tracked?

    func isFilled(with byte: UInt8) -> Bool {
        bytes.count == Big.size && bytes.withUnsafeBufferPointer { buffer in
            buffer.allSatisfy { $0 == byte }
        }
    }
}

@Suite("Bad input: initializers, deinits, slow keys, large values, colliding keys, unknown keys, deep throws")
struct BadInputTests {
    @Test("a value's deinit may reset its own key while a write replaces it, and update's body may too")
    func resetOwnKeyDuringAccess() async {
        await Task {
            let local = Local { Sample() }
            local.count = 1  // the cell is now in this thread's lookup cache
            local.tracked = Tracked(tag: 0, counter: DeinitCounter()) { local.reset() }
            local.tracked = nil  // the deinit resets the key while the write is under way
            #expect(local.count == 0)
            local.count = 5
            local.update { value in
                local.reset()  // drops the cell `update` is working on
                value.count += 1
            }
            #expect(local.count == 0, "the write landed in the dropped value, not in a new one")
        }.value
    }

    // MARK: Initializers

    #if compiler(>=6.2)
    @Test("an initializer that reaches its own Local through another Local's initializer stops")
    func initializerCycleThroughAnotherLocal() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Cycle.a.name
        }
        let message = standardError(of: result)
        #expect(message.contains("Cycle.A") || message.contains("A>"), "\(message)")
        #expect(message.contains("initializer"))
    }
    #endif

    @Test("an initializer may touch the same Local for another key")
    func initializerTouchesSameLocalOtherKey() {
        let calls = CallCounter()
        let holder = Box<Local<Sample>>()
        let local = Local(SessionDiscriminator()) { () -> Sample in
            calls.increment()
            var value = Sample()
            if SessionDiscriminator.session == "derived", let local = holder.value {
                value.simple = "derived from " + SessionDiscriminator.$session.withValue("base") { local.simple }
            }
            return value
        }
        holder.value = local
        SessionDiscriminator.$session.withValue("base") { local.simple = "base value" }
        #expect(SessionDiscriminator.$session.withValue("derived") { local.simple } == "derived from base value")
        #expect(calls.count == 2)
        holder.value = nil
    }

    @Test("initializers chain through Locals of every discriminator, from many tasks at once")
    func initializerChainsAcrossDiscriminators() async {
        let perTask = Local { Sample() }
        let perThread = Local(.thread) { () -> Sample in
            var value = Sample()
            value.count = perTask.count + 1
            return value
        }
        let perSession = Local(SessionDiscriminator()) { () -> Sample in
            var value = Sample()
            value.count = perThread.count + 1
            value.simple = "session \(SessionDiscriminator.session ?? "-")"
            return value
        }
        let seen = await withTaskGroup(of: (Int, String).self) { group in
            for i in 0..<100 {
                group.addTask {
                    SessionDiscriminator.$session.withValue("s\(i % 10)") {
                        (perSession.count, perSession.simple)
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seen.count == 100)
        for (count, simple) in seen {
            // perTask starts at 0, so a fresh thread's value is 1 and a session's first value 2;
            // a thread that earlier tasks already touched may have moved on, never backwards.
            #expect(count >= 2, "\(simple)")
            #expect(simple.hasPrefix("session s"))
        }
    }

    // MARK: Deinits

    #if compiler(>=6.3)
    @Test("a value's deinit may touch the same Local when a write overwrites the value",
          arguments: OverwriteSite.allCases)
    func deinitOnOverwriteTouchesSameLocal(site: OverwriteSite) async {
        await #expect(processExitsWith: .success) { [site] in
            // A lock held while the old value is released would spin here forever: end the
            // process instead (the bound only turns a hang into a failure).
            alarm(15)
            await OverwriteSite.run(site)
        }
    }

    @Test("update's body may touch the same Local where no other task shares the value; elsewhere nothing hangs",
          arguments: UpdateSite.allCases)
    func updateBodyTouchesSameLocal(site: UpdateSite) async {
        await #expect(processExitsWith: .success) { [site] in
            alarm(15)  // a lock held around the body would spin forever: end the process instead
            await UpdateSite.run(site)
        }
    }
    #endif

    @Test("a scope's value whose deinit touches the same and other Locals is released when the scope ends")
    func scopeValueDeinitTouchesLocals() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let other = Local(SessionDiscriminator()) { Sample() }
        local.count = 5
        local.withScope {
            local.tracked = Tracked(tag: 0, counter: counter) {
                local.simple = "written by a deinit"
                SessionDiscriminator.$session.withValue("s") { other.count += 1 }
            }
        }
        #expect(counter.count == 1)
        #expect(local.count == 5)
        #expect(local.simple == "written by a deinit")
        #expect(SessionDiscriminator.$session.withValue("s") { other.count } == 1)
    }

    // MARK: Slow discriminators

    @Test("a slow currentKey holds no lock: another key's access completes while it waits")
    func slowCurrentKeyHoldsNoLock() async {
        let gate = SlowKeyDiscriminator.Gate()
        let local = Local(SlowKeyDiscriminator(gate: gate)) { Sample() }
        async let slow = onNewThread {
            SlowKeyDiscriminator.$key.withValue("slow") { () -> String in
                local.simple = "slow"
                return local.simple
            }
        }
        let fast = await onNewThread { () -> String in
            gate.entered.wait()
            // The slow thread is inside currentKey now: this access must not wait for it.
            let value = SlowKeyDiscriminator.$key.withValue("fast") { () -> String in
                local.simple = "fast"
                return local.simple
            }
            gate.fastDone.open()
            return value
        }
        #expect(fast == "fast")
        #expect(await slow == "slow")
        #expect(!gate.fastDone.timedOut, "the slow currentKey waited for the fast key's access: a lock was held")
    }

    @Test("a busy currentKey under contention: every key's updates add up")
    func busyCurrentKeyUnderContention() async {
        let local = Local(BusyKeyDiscriminator()) { Sample() }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    BusyKeyDiscriminator.$key.withValue(task % 4) {
                        for _ in 0..<100 { local.update { $0.count += 1 } }
                    }
                }
            }
        }
        for key in 0..<4 {
            #expect(BusyKeyDiscriminator.$key.withValue(key) { local.count } == 400)
        }
    }

    // MARK: Large values

    @Test("1 MiB values: each task keeps its own across suspension points")
    func largeValuesPerTask() async {
        let local = Local { Big() }
        let ok = await withTaskGroup(of: Bool.self) { group in
            for task in 0..<16 {
                group.addTask {
                    let byte = UInt8(task + 1)
                    local.bytes = [UInt8](repeating: byte, count: Big.size)
                    await Task.yield()
                    local.bytes[Big.size / 2] = byte
                    await Task.yield()
                    return local.value.isFilled(with: byte)
                }
            }
            return await group.allSatisfy { $0 }
        }
        #expect(ok)
    }

    @Test("a 1 MiB scope value reaches children by every policy; their copies are their own",
          arguments: Inheritance.all)
    func largeScopeValues(policy: Inheritance) async {
        let local = Local(inheritance: policy) { Big() }
        await local.withValues({ $0.bytes = [UInt8](repeating: 7, count: Big.size) }) {
            let childSaw = await Task { () -> UInt8 in
                let first = local.bytes[Big.size - 1]
                local.bytes[0] = 9
                return first
            }.value
            #expect(childSaw == (policy == .fresh ? 0 : 7))
            #expect(local.bytes[0] == (policy == .shared ? 9 : 7))
            #expect(local.bytes.count == Big.size)
        }
        #expect(local.value.isFilled(with: 0))
    }

    @Test("1 MiB values of finished tasks are released",
          .enabled(if: pinsTasks, "the fallback releases on address reuse: see the fallback tests"))
    func largeValuesReleased() async {
        let counter = DeinitCounter()
        let local = Local { Big() }
        for i in 0..<200 {
            await Task {
                local.bytes[i] = 1
                local.tracked = counter.make(i)
            }.value
        }
        for _ in 0..<200 {
            await Task { local.bytes[0] = 2 }.value
        }
        // At most the tasks since the last sweep may still hold theirs (release is lazy: see the
        // Lifetimes and Guarantees article).
        #expect(counter.count == 200)
    }

    // MARK: Colliding hashes

    @Test("colliding keys: discard, reset and scopes touch only their own key, from many tasks")
    func collidingKeysStayApart() async {
        let calls = CallCounter()
        let local = Local(CollidingDiscriminator()) { () -> Sample in
            calls.increment()
            return Sample()
        }
        let keys = (0..<20).map(CollidingKey.init)
        await withTaskGroup(of: Void.self) { group in
            for key in keys {
                group.addTask {
                    CollidingDiscriminator.$key.withValue(key) {
                        local.id = key.id
                        for _ in 0..<50 { local.update { $0.count += 1 } }
                    }
                }
            }
        }
        #expect(calls.count == 20)
        local.discard(key: CollidingKey(id: 7))
        CollidingDiscriminator.$key.withValue(CollidingKey(id: 8)) { local.reset() }
        CollidingDiscriminator.$key.withValue(CollidingKey(id: 9)) {
            local.withValue(\.id, 900) {
                #expect(local.id == 900)
                #expect(CollidingDiscriminator.$key.withValue(CollidingKey(id: 10)) { local.id } == 10)
            }
        }
        for key in keys {
            let (id, count) = CollidingDiscriminator.$key.withValue(key) { (local.id, local.count) }
            if key.id == 7 || key.id == 8 {
                #expect((id, count) == (-1, 0), "key \(key.id)")
            } else {
                #expect((id, count) == (key.id, 50), "key \(key.id)")
            }
        }
        #expect(calls.count == 22)
    }

    // MARK: Unknown keys

    @Test("discarding unknown keys changes nothing and runs no initializer")
    func discardUnknownKeysIsNoOp() async {
        let calls = CallCounter()
        let sessions = Local(CollidingDiscriminator()) { () -> Sample in
            calls.increment()
            return Sample()
        }
        for id in 0..<5 {
            CollidingDiscriminator.$key.withValue(CollidingKey(id: id)) { sessions.id = id }
        }
        sessions.discard(key: CollidingKey(id: 99))  // same hash as the stored keys, never stored
        for id in 0..<5 {
            #expect(CollidingDiscriminator.$key.withValue(CollidingKey(id: id)) { sessions.id } == id)
        }
        #expect(calls.count == 5)

        // A Local that never stored anything, of each discriminator.
        let untouched = [Local { () -> Sample in calls.increment(); return Sample() },
                         Local(.thread) { () -> Sample in calls.increment(); return Sample() },
                         Local(SessionDiscriminator()) { () -> Sample in calls.increment(); return Sample() }]
        let running = Signal()
        let release = Signal()
        let other = Task { () -> Int in
            running.fire()
            await release.wait()
            return untouched[0].id
        }
        await running.wait()
        let otherID = await Task { TaskID.current! }.value
        untouched[0].discard(key: otherID)
        untouched[0].discard(key: TaskDiscriminator().currentKey!)
        untouched[1].discard(key: ThreadID.current)
        untouched[2].discard(key: "s")
        #expect(calls.count == 5)
        release.fire()
        #expect(await other.value == -1)
    }

    // MARK: Reset outside any task

    @Test("reset on a plain thread: a no-op with nothing stored, drops a stored value, resets a scope's until it ends",
          arguments: ["task fallback", "thread", "session"])
    func resetOutsideAnyTask(kind: String) async {
        let calls = CallCounter()
        let make: @Sendable () -> Sample = { calls.increment(); return Sample() }
        let local: Local<Sample> = switch kind {
        case "task fallback": Local(initialValue: make)
        case "thread": Local(.thread, initialValue: make)
        default: Local(SessionDiscriminator(), initialValue: make)
        }
        let result = await onNewThread { () -> [Int] in
            SessionDiscriminator.$session.withValue("s") {
                var seen: [Int] = []
                local.reset()                  // nothing stored: nothing happens
                seen.append(calls.count)       // 0
                local.id = 1
                local.reset()
                seen.append(local.id)          // -1, a new initial value
                seen.append(calls.count)       // 2
                local.id = 2
                local.withValue(\.id, 3) {
                    local.reset()
                    seen.append(local.id)      // -1 inside the scope
                    local.id = 4
                }
                seen.append(local.id)          // 2 again after it
                return seen
            }
        }
        #expect(result[0] == 0, "reset with nothing stored ran the initializer")
        #expect(result[1] == -1)
        #expect(result[2] == 2)
        #expect(result[3] == -1)
        #expect(result[4] == 2)
    }

    // MARK: Deep throws

    struct DeepError: Error {
        let depth: Int
        /// Whether every level the error passed saw its own values and was restored.
        var ok: Bool
    }

    /// Opens scopes `depth..<max` nested, alternating two Locals; the innermost throws, and the
    /// level `catchAt` catches. Returns whether every level saw its own values inside, and the
    /// values from before it once its scope ended.
    static func nest(
        _ a: Local<Sample>, _ b: Local<Sample>, depth: Int, max: Int, catchAt: Int
    ) throws(DeepError) -> Bool {
        let local = depth.isMultiple(of: 2) ? a : b
        func snapshot() -> [Int] { [a.id, b.id, a.count, b.count] }
        let before = snapshot()
        var ok = true
        do throws(DeepError) {
            try local.withValues({ $0.id = depth; $0.count += 1 }) { () throws(DeepError) -> Void in
                ok = local.id == depth && local.count == depth / 2 + 1
                if depth == max - 1 { throw DeepError(depth: depth, ok: true) }
                ok = try nest(a, b, depth: depth + 1, max: max, catchAt: catchAt) && ok
            }
        } catch {
            let passed = error.ok && ok && snapshot() == before && error.depth == max - 1
            if depth > catchAt { throw DeepError(depth: error.depth, ok: passed) }
            return passed
        }
        return ok && snapshot() == before
    }

    @Test("a throw deep in a nest of scopes restores every level it passes, for every discriminator",
          arguments: ["task", "task fallback", "thread", "session"])
    func deepThrowRestoresEveryLevel(kind: String) async {
        func make() -> Local<Sample> {
            switch kind {
            case "thread": Local(.thread) { Sample() }
            case "session": Local(SessionDiscriminator()) { Sample() }
            default: Local { Sample() }
            }
        }
        let a = make()
        let b = make()
        let check: @Sendable () -> Bool = {
            SessionDiscriminator.$session.withValue("s") {
                a.id = 100
                b.id = 200
                var ok = true
                for catchAt in [0, 1, 17, 62, 63] {
                    ok = ok && ((try? Self.nest(a, b, depth: 0, max: 64, catchAt: catchAt)) ?? false)
                    ok = ok && (a.id, b.id, a.count, b.count) == (100, 200, 0, 0)
                }
                return ok
            }
        }
        let ok = kind == "task" ? await Task { check() }.value : await onNewThread(check)
        #expect(ok)
    }

    @Test("cancellation deep in a nest of async scopes restores every level, for every policy",
          arguments: Inheritance.all)
    func deepCancellationRestores(policy: Inheritance) async {
        let a = Local(inheritance: policy) { Sample() }
        let b = Local(inheritance: policy) { Sample() }
        let deep = Signal()
        @Sendable func nest(_ depth: Int) async throws -> Bool {
            let local = depth.isMultiple(of: 2) ? a : b
            return try await local.withValues({ $0.id = depth; $0.count += 1 }) { () async throws -> Bool in
                if depth == 31 {
                    deep.fire()
                    await waitUntilCancelled()
                    // A child created this deep sees the innermost values, then the throw unwinds.
                    let seen = await Task { (a.id, b.id) }.value
                    guard seen == (policy == .fresh ? (-1, -1) : (30, 31)) else { return false }
                    try Task.checkCancellation()
                    return false
                }
                let inner = try await nest(depth + 1)
                return inner && local.id == depth
            }
        }
        let task = Task { () -> (Bool, Bool, Int, Int) in
            a.id = 100
            b.id = 200
            do {
                _ = try await nest(0)
                return (false, false, a.id, b.id)
            } catch {
                return (error is CancellationError, true, a.id, b.id)
            }
        }
        await deep.wait()
        task.cancel()
        let (cancelled, threw, aID, bID) = await task.value
        #expect(threw)
        #expect(cancelled)
        #expect((aID, bID) == (100, 200))
    }
}
