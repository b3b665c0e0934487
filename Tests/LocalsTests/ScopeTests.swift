import Dispatch
import Foundation
import Locals
import Testing

enum ScopeError: Error, Equatable {
    case boom(Int)
}

/// An error compared by identity: rethrown unchanged means the very same object comes back.
final class IdentityError: Error, Sendable {}

@Suite("Scopes: withValue, withValues, withScope")
struct ScopeTests {
    // MARK: Restore on return

    @Test("sync withValue binds for the operation and restores on return")
    func syncWithValue() {
        let local = Local { Sample() }
        local.simple = "before"
        local.count = 3
        let inside = local.withValue(\.simple, "scoped") { (local.simple, local.count) }
        #expect(inside == ("scoped", 3), "a scope starts from the current value")
        #expect(local.simple == "before")
    }

    @Test("async withValue binds for the operation and restores on return")
    func asyncWithValue() async {
        let local = Local { Sample() }
        local.simple = "before"
        let inside = await local.withValue(\.simple, "scoped") { () async -> String in
            await Task.yield()
            return local.simple
        }
        #expect(inside == "scoped")
        #expect(local.simple == "before")
    }

    @Test("withValues changes several attributes and restores them all", arguments: [false, true])
    func withValues(async: Bool) async {
        let local = Local { Sample() }
        local.id = 1
        let change: (inout Sample) -> Void = { $0.simple = "changed"; $0.list = ["a", "b"]; $0.id = 2 }
        let read = { (local.simple, local.list, local.id) }
        let inside = async
            ? await local.withValues(change) { () async in await Task.yield(); return read() }
            : local.withValues(change) { read() }
        #expect(inside.0 == "changed")
        #expect(inside.1 == ["a", "b"])
        #expect(inside.2 == 2)
        #expect(read().0 == Sample.initial)
        #expect(read().1 == Sample.initialList)
        #expect(read().2 == 1)
    }

    @Test("withScope opens a scope without changing anything", arguments: [false, true])
    func withScope(async: Bool) async {
        let local = Local { Sample() }
        local.simple = "before"
        let body = { () -> String in
            let seen = local.simple
            local.simple = "inside"
            return seen
        }
        let seen = async ? await local.withScope { () async in body() } : local.withScope { body() }
        #expect(seen == "before")
        #expect(local.simple == "before")
    }

    @Test("the owner's writes inside a scope are discarded when it ends")
    func ownerWritesDiscarded() async {
        let local = Local { Sample() }
        local.simple = "before"
        await local.withValue(\.id, 10) {
            local.simple = "inside"
            local.count += 5
            local.update { $0.list.append("inside") }
            var whole = local.value
            whole.late = "inside"
            local.value = whole
            await Task.yield()
            #expect(local.simple == "inside")
            #expect(local.count == 5)
            #expect(local.late == "inside")
        }
        #expect(local.simple == "before")
        #expect(local.count == 0)
        #expect(local.id == -1)
        #expect(local.late == Sample.initial)
        #expect(local.list == Sample.initialList)
        local.withValue(\.id, 11) { local.simple = "sync inside" }
        #expect(local.simple == "before")
    }

    @Test("reset inside a scope resets the scope's value; the previous value is restored after")
    func resetInsideScope() {
        let local = Local { Sample() }
        local.simple = "before"
        local.withValue(\.id, 1) {
            local.reset()
            #expect(local.simple == Sample.initial)
            #expect(local.id == -1)
        }
        #expect(local.simple == "before")
    }

    // MARK: Restore on errors

    @Test("sync scope restores on a thrown error and rethrows it unchanged")
    func syncThrowRestores() {
        let local = Local { Sample() }
        local.simple = "before"
        let thrown = IdentityError()
        do {
            try local.withValue(\.simple, "scoped") { () throws -> Void in
                local.count = 9
                throw thrown
            }
            Issue.record("no error")
        } catch {
            #expect(error as? IdentityError === thrown)
        }
        #expect(local.simple == "before")
        #expect(local.count == 0)
    }

    @Test("async scope restores on a thrown error and rethrows it unchanged")
    func asyncThrowRestores() async {
        let local = Local { Sample() }
        local.simple = "before"
        let thrown = IdentityError()
        do {
            try await local.withValues({ $0.simple = "scoped" }) { () async throws -> Void in
                await Task.yield()
                throw thrown
            }
            Issue.record("no error")
        } catch {
            #expect(error as? IdentityError === thrown)
        }
        #expect(local.simple == "before")
    }

    @Test("typed throws pass through scopes with their type", arguments: [false, true])
    func typedThrows(async: Bool) async {
        let local = Local { Sample() }
        do throws(ScopeError) {
            if async {
                try await local.withValue(\.simple, "scoped") { () async throws(ScopeError) -> Void in
                    throw .boom(1)
                }
            } else {
                try local.withScope { () throws(ScopeError) -> Void in throw .boom(2) }
            }
            Issue.record("no error")
        } catch {
            let typed: ScopeError = error  // statically typed: no cast needed
            #expect(typed == (async ? .boom(1) : .boom(2)))
        }
        #expect(local.simple == Sample.initial)
        // A non-throwing operation needs no `try`.
        let value = local.withValue(\.id, 4) { local.id }
        #expect(value == 4)
    }

    // MARK: Restore on cancellation

    @Test("a scope restores the previous value when its task is cancelled inside it")
    func cancellationRestores() async {
        let local = Local { Sample() }
        let entered = Signal()
        let task = Task { () -> (String, String, Bool) in
            local.simple = "before"
            var threw = false
            var inside = ""
            do {
                inside = try await local.withValue(\.simple, "scoped") { () async throws -> String in
                    entered.fire()
                    await waitUntilCancelled()
                    let seen = local.simple
                    try Task.checkCancellation()
                    return seen
                }
            } catch is CancellationError {
                threw = true
            } catch {
                Issue.record("unexpected \(error)")
            }
            return (inside, local.simple, threw)
        }
        await entered.wait()
        task.cancel()
        let (inside, after, threw) = await task.value
        #expect(threw)
        #expect(inside == "")
        #expect(after == "before")
    }

    @Test("a cancelled task's non-throwing scope returns and restores")
    func cancellationNonThrowing() async {
        let local = Local { Sample() }
        let entered = Signal()
        let task = Task { () -> (String, String) in
            let inside = await local.withValue(\.simple, "scoped") { () async -> String in
                entered.fire()
                await waitUntilCancelled()
                return local.simple
            }
            return (inside, local.simple)
        }
        await entered.wait()
        task.cancel()
        let (inside, after) = await task.value
        #expect(inside == "scoped")
        #expect(after == Sample.initial)
    }

    // MARK: Nesting

    @Test("scopes nest as a stack")
    func nesting() async {
        let local = Local { Sample() }
        local.id = 0
        await local.withValue(\.id, 1) {
            await local.withValues({ $0.id = 2; $0.simple = "two" }) {
                local.withValue(\.id, 3) {
                    #expect(local.id == 3)
                    #expect(local.simple == "two")
                }
                #expect(local.id == 2)
                await local.withScope { () async in
                    local.id = 20
                }
                #expect(local.id == 2)
            }
            #expect(local.id == 1)
            #expect(local.simple == Sample.initial)
        }
        #expect(local.id == 0)
    }

    static func nestSync(_ local: Local<Sample>, _ depth: Int, to max: Int) -> Bool {
        if depth == max { return local.id == max - 1 && local.count == max }
        return local.withValues({ $0.id = depth; $0.count += 1 }) {
            nestSync(local, depth + 1, to: max) && local.id == depth && local.count == depth + 1
        }
    }

    static func nestAsync(_ local: Local<Sample>, _ depth: Int, to max: Int) async -> Bool {
        if depth == max { return local.id == max - 1 && local.count == max }
        return await local.withValues({ $0.id = depth; $0.count += 1 }) { () async -> Bool in
            if depth.isMultiple(of: 100) { await Task.yield() }
            let inner = await nestAsync(local, depth + 1, to: max)
            return inner && local.id == depth && local.count == depth + 1
        }
    }

    @Test("1,000 nested scopes, sync and async, without stack overflow", arguments: [false, true])
    func deepNesting(async: Bool) async {
        let local = Local { Sample() }
        let ok = async ? await Self.nestAsync(local, 0, to: 1_000) : Self.nestSync(local, 0, to: 1_000)
        #expect(ok)
        #expect(local.id == -1)
        #expect(local.count == 0)
    }

    @Test("a scope in a child task does not change the parent's value")
    func childScopeIsolated() async {
        let local = Local { Sample() }
        local.simple = "parent"
        let entered = Signal()
        let leave = Signal()
        let child = Task {
            await local.withValue(\.simple, "child scope") {
                entered.fire()
                await leave.wait()
            }
        }
        await entered.wait()
        #expect(local.simple == "parent")
        leave.fire()
        await child.value
        #expect(local.simple == "parent")
    }

    // MARK: Actor isolation

    @Test("async scopes keep an actor's isolation: the operation runs on the actor's executor")
    func actorIsolation() async {
        let actor = ScopeActor()
        #expect(actor.isOnExecutor == false, "the check tells executors apart")
        let checks = await actor.runScopes(Local { Sample() })
        #expect(checks.count == 8)
        #expect(checks.allSatisfy { $0.value }, "\(checks.filter { !$0.value }.map(\.key))")
    }

    @Test("async scopes keep the main actor's isolation")
    @MainActor
    func mainActorIsolation() async {
        let local = Local { Sample() }
        let state = MainActorState()
        #expect(isOnMainQueue(), "the test itself runs on the main queue")
        #expect(await Task.detached { isOnMainQueue() }.value == false, "the check tells queues apart")
        await local.withValue(\.simple, "main") {
            #expect(isOnMainQueue())
            MainActor.assertIsolated()
            state.count += 1  // non-Sendable main-actor state, reached synchronously
            await Task.yield()
            #expect(isOnMainQueue())
            #expect(local.simple == "main")
        }
        try? await local.withValues({ $0.id = 1 }) { () async throws -> Void in
            #expect(isOnMainQueue())
            state.count += 1
        }
        await local.withScope { () async in
            #expect(isOnMainQueue())
            state.count += 1
        }
        #expect(state.count == 3)
    }

    // MARK: Thread and custom discriminators

    @Test(".thread: a scope changes and restores the thread's value, and nothing is inherited")
    func threadScope() async {
        let local = Local(.thread) { Sample() }
        let result = await onNewThread { () -> [String] in
            var seen: [String] = []
            local.simple = "before"
            local.withValue(\.simple, "scoped") {
                seen.append(local.simple)
                local.count = 5  // discarded with the scope
                seen.append(onNewThreadBlocking { local.simple } ?? "hung")
            }
            seen.append(local.simple)
            seen.append("\(local.count)")
            return seen
        }
        #expect(result == ["scoped", Sample.initial, "before", "0"])
    }

    @Test(".thread: a scope restores the value after a thrown error")
    func threadScopeThrows() async {
        let local = Local(.thread) { Sample() }
        let after = await onNewThread { () -> String in
            local.simple = "before"
            try? local.withValue(\.simple, "scoped") { () throws -> Void in throw IdentityError() }
            return local.simple
        }
        #expect(after == "before")
    }

    @Test("custom: a scope changes and restores the session's value; other sessions and tasks are unaffected",
          arguments: [false, true])
    func customScope(async: Bool) async {
        let local = Local(SessionDiscriminator()) { Sample() }
        await SessionDiscriminator.$session.withValue("a") {
            local.simple = "before"
            let check = {
                #expect(local.simple == "scoped")
                local.count = 5  // discarded with the scope
                #expect(SessionDiscriminator.$session.withValue("b") { local.simple } == Sample.initial)
            }
            if async {
                await local.withValue(\.simple, "scoped") { () async in
                    check()
                    await Task.yield()
                    // No inheritance by policy: a detached task without the session has no key.
                    #expect(await Task.detached { local.simple }.value == Sample.initial)
                }
            } else {
                local.withValue(\.simple, "scoped") { check() }
            }
            #expect(local.simple == "before")
            #expect(local.count == 0)
        }
    }
}

// MARK: - Helpers for actor isolation

/// A serial executor on a dispatch queue that can tell whether the caller is running on it.
final class QueueExecutor: SerialExecutor, @unchecked Sendable {
    // @unchecked: both properties are immutable and thread-safe.
    private let queue = DispatchQueue(label: "ScopeActor")
    private let key = DispatchSpecificKey<Int>()

    init() {
        queue.setSpecific(key: key, value: 1)
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let executor = asUnownedSerialExecutor()
        queue.async { job.runSynchronously(on: executor) }
    }

    var isCurrent: Bool { DispatchQueue.getSpecific(key: key) == 1 }
}

final class NonSendableCounter {
    var count = 0
}

actor ScopeActor {
    private let executor = QueueExecutor()
    private let counter = NonSendableCounter()

    nonisolated var unownedExecutor: UnownedSerialExecutor { executor.asUnownedSerialExecutor() }
    nonisolated var isOnExecutor: Bool { executor.isCurrent }

    func runScopes(_ local: Local<Sample>) async -> [String: Bool] {
        var checks: [String: Bool] = [:]
        await local.withValue(\.simple, "actor") {
            checks["withValue before await"] = executor.isCurrent
            counter.count += 1  // actor-isolated, non-Sendable state reached synchronously
            await Task.yield()
            checks["withValue after await"] = executor.isCurrent
            checks["withValue sees value"] = local.simple == "actor"
        }
        await local.withValues({ $0.id = 1 }) { () async in
            checks["withValues"] = executor.isCurrent
            counter.count += 1
        }
        await local.withScope { () async in
            checks["withScope"] = executor.isCurrent
            counter.count += 1
        }
        do throws(ScopeError) {
            try await local.withValue(\.id, 2) { () async throws(ScopeError) -> Void in
                checks["throwing withValue"] = executor.isCurrent
                counter.count += 1
                throw .boom(0)
            }
        } catch {
            checks["typed error"] = error == .boom(0)
        }
        checks["restored and all ran"] = local.simple == Sample.initial && counter.count == 4
        return checks
    }
}

@MainActor
final class MainActorState {
    var count = 0
}

/// Whether the caller runs on the main dispatch queue, which runs the main actor's jobs.
/// (Under `swift test` on Linux that queue may be drained by a thread other than the process's
/// first one, so `Thread.isMainThread` cannot tell.)
func isOnMainQueue() -> Bool {
    DispatchQueue.getSpecific(key: mainQueueMarker.key) == 1
}

let mainQueueMarker: MainQueueMarker = {
    let marker = MainQueueMarker()
    DispatchQueue.main.setSpecific(key: marker.key, value: 1)
    return marker
}()

final class MainQueueMarker: @unchecked Sendable {
    // @unchecked: immutable, and a DispatchSpecificKey is only an identity.
    let key = DispatchSpecificKey<Int>()
}
