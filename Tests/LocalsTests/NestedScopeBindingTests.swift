import Dispatch
import Foundation
@testable import Locals
import _LocalsRuntime
import Synchronization
import Testing

/// Synchronous scopes nested in a synchronous scope of the same task share its runtime binding of
/// the scope chain's task-local: each puts its link in that binding for its operation. Every way
/// a value leaves a scope must still see the innermost scope open where it left, and nothing may
/// see a scope after it closed.
@Suite("Nested synchronous scopes share one binding, and every reader still sees the innermost scope")
struct NestedScopeBindingTests {
    /// Whether this run forced synchronous scopes to push a binding each (see `BindingInPlace`).
    static let forcedOff = TaskRuntime.namesForcedByEnvironment().contains { ["taskLocalPush", "bindingInPlace"].contains($0) }

    @Test("the runtime answered the first-use probe, so synchronous scopes share a binding here")
    func confirmed() {
        #expect(BindingInPlace.isConfirmed == !Self.forcedOff)
    }

    @Test("inside nested synchronous scopes of a task, the chain's binding is the outermost scope's")
    func oneBinding() async {
        let first = Local { Sample() }
        let second = Local { Sample() }
        let addresses = await Task.detached { () -> [UInt] in
            var addresses: [UInt] = []
            first.withValue(\.simple, "a") {
                addresses.append(UInt(bitPattern: locals_runtime_task_local_get(ScopeChain.keyAddress)))
                second.withValue(\.simple, "b") {
                    addresses.append(UInt(bitPattern: locals_runtime_task_local_get(ScopeChain.keyAddress)))
                    first.withValue(\.simple, "c") {
                        addresses.append(UInt(bitPattern: locals_runtime_task_local_get(ScopeChain.keyAddress)))
                    }
                }
            }
            return addresses
        }.value
        #expect(addresses.count == 3)
        #expect(addresses[0] != 0)
        #expect(Set(addresses).count == (Self.forcedOff ? 3 : 1), "each nested scope pushed a binding of its own")
    }

    @Test("reads, captures and Task {} inside nested synchronous scopes see the innermost, and the outer value returns")
    func readersSeeTheInnermost() async {
        let first = Local { Sample() }
        let second = Local { Sample() }
        let seen = await Task.detached { () -> [String] in
            var seen: [String] = []
            var children: [Task<String, Never>] = []
            var snapshots: [LocalsSnapshot] = []
            first.withValue(\.simple, "a1") {
                second.withValue(\.simple, "b1") {
                    first.withValue(\.simple, "a2") {
                        seen.append("\(first.simple) \(second.simple)")
                        children.append(Task { "\(first.simple) \(second.simple)" })
                        snapshots.append(LocalsSnapshot.capture())
                    }
                    seen.append("\(first.simple) \(second.simple)")
                    children.append(Task { "\(first.simple) \(second.simple)" })
                    first.withValue(\.simple, "a3") {
                        snapshots.append(LocalsSnapshot.capture())
                    }
                }
                seen.append("\(first.simple) \(second.simple)")
            }
            seen.append("\(first.simple) \(second.simple)")
            for child in children { seen.append(await child.value) }
            for snapshot in snapshots { seen.append(snapshot.run { "\(first.simple) \(second.simple)" }) }
            return seen
        }.value
        #expect(seen == [
            "a2 b1", "a1 b1", "a1 initial", "initial initial",
            "a2 b1", "a1 b1",
            "a2 b1", "a3 b1",
        ])
    }

    @Test("a task-group child made inside nested synchronous scopes keeps their values while the parent opens others")
    func groupChildKeepsItsScopes() async {
        let local = Local(inheritance: .shared) { Sample() }
        let executor = AlternatingExecutor()
        defer { executor.stop() }
        let read = DispatchSemaphore(value: 0)
        let seen = await withTaskGroup(of: String.self) { group -> [String] in
            local.withValue(\.simple, "outer") {
                local.withValue(\.simple, "inner") {
                    group.addTask(executorPreference: executor) {
                        let value = local.simple  // read while the parent sits in "sibling", below
                        read.signal()
                        return value
                    }
                }
                // Nested in the same binding as "inner" was: a child linked to that binding
                // instead of copying it would read this one.
                local.withValue(\.simple, "sibling") {
                    #expect(read.wait(timeout: .now() + 30) == .success, "the child never ran")
                }
            }
            var seen: [String] = []
            for await value in group { seen.append(value) }
            return seen
        }
        #expect(seen == ["inner"])
    }

    @Test("a synchronous snapshot run inside nested scopes binds its own, and the scopes outside it come back")
    func runInsideNestedScopes() async {
        let local = Local { Sample() }
        let snapshot = await Task.detached { local.withValue(\.simple, "captured") { LocalsSnapshot.capture() } }.value
        let seen = await Task.detached { () -> [String] in
            var seen: [String] = []
            local.withValue(\.simple, "a") {
                local.withValue(\.simple, "b") {
                    snapshot.run {
                        seen.append(local.simple)
                        local.withValue(\.simple, "c") {
                            local.withValue(\.simple, "d") { seen.append(local.simple) }
                            seen.append(local.simple)
                        }
                        seen.append(local.simple)
                    }
                    seen.append(local.simple)
                    local.withValue(\.simple, "e") { seen.append(local.simple) }
                }
                seen.append(local.simple)
            }
            return seen
        }.value
        #expect(seen == ["captured", "d", "c", "captured", "b", "e", "a"])
    }

    @Test("a scope whose operation throws puts the outer scope back, inside a task and outside any")
    func throwingInside() async {
        struct Failure: Error {}
        let local = Local { Sample() }
        let body = { @Sendable () -> [String] in
            var seen: [String] = []
            local.withValue(\.simple, "a") {
                do {
                    try local.withValue(\.simple, "b") { () throws(Failure) in
                        try local.withValue(\.simple, "c") { () throws(Failure) in throw Failure() }
                    }
                } catch {
                    seen.append(local.simple)
                }
                local.withValue(\.simple, "d") { seen.append(local.simple) }
                seen.append(local.simple)
            }
            seen.append(local.simple)
            return seen
        }
        #expect(await Task.detached(operation: body).value == ["a", "d", "a", "initial"])
        #expect(PartsThread.run(body) == ["a", "d", "a", "initial"])
    }

    @Test("a task that copied a scope still open in its parent binds its own scopes: its group's children keep what they inherited")
    func copiedLinkIsNotSharedAcrossTasks() async {
        let local = Local(inheritance: .copy) { Sample() }
        let executors = (0..<3).map { _ in AlternatingExecutor() }
        defer { executors.forEach { $0.stop() } }
        // Each task below blocks its own executor's thread, never the shared pool's.
        let inScope = DispatchSemaphore(value: 0)
        let childRead = DispatchSemaphore(value: 0)
        let seen = await Task(executorPreference: executors[0]) { () -> [String] in
            local.withValue(\.simple, "a") {
                local.withValue(\.simple, "b") {
                    // Copies the binding that holds "b", while this scope stays open until it ends.
                    let copying = Task(executorPreference: executors[1]) { () -> [String] in
                        await withTaskGroup(of: String.self) { group -> [String] in
                            group.addTask(executorPreference: executors[2]) {
                                _ = inScope.wait(timeout: .now() + 30)
                                defer { childRead.signal() }
                                return local.simple  // its parent sits in "x" now
                            }
                            let inside = local.withValue(\.simple, "x") { () -> String in
                                inScope.signal()
                                _ = childRead.wait(timeout: .now() + 30)
                                return local.simple
                            }
                            var seen = [inside, local.simple]
                            for await value in group { seen.append(value) }
                            return seen
                        }
                    }
                    let finished = DispatchSemaphore(value: 0)
                    let result = SeenValues()
                    Task(executorPreference: executors[1]) {
                        for value in await copying.value { result.append(value) }
                        finished.signal()
                    }
                    _ = finished.wait(timeout: .now() + 30)
                    return result.values
                }
            }
        }.value
        #expect(seen == ["x", "b", "b"])
    }

    @Test("Task.immediate inside nested scopes: its own nested scopes, its group's children, then the parent's scopes")
    func immediateTaskInside() async {
        let local = Local(inheritance: .copy) { Sample() }
        let executor = AlternatingExecutor()
        defer { executor.stop() }
        let seen = SeenValues()
        let parentMovedOn = Signal()
        await Task.detached {
            var child: Task<Void, Never>?
            local.withValue(\.simple, "a") {
                local.withValue(\.simple, "b") {
                    // Starts on this thread with a copy of the binding that holds "b", which its
                    // parent keeps open until the task first suspends (waiting for its group).
                    child = Task.immediate {
                        await withTaskGroup(of: Void.self) { group in
                            local.withValue(\.simple, "x") {
                                local.withValue(\.simple, "y") {
                                    seen.append(local.simple)
                                    group.addTask(executorPreference: executor) {
                                        await parentMovedOn.wait()
                                        seen.append("g:" + local.simple)
                                    }
                                }
                                local.withValue(\.simple, "z") { seen.append(local.simple) }
                                seen.append(local.simple)
                            }
                            seen.append(local.simple)
                        }
                        seen.append("i:" + local.simple)
                    }
                    seen.append(local.simple)
                    local.withValue(\.simple, "c") { seen.append(local.simple) }
                }
                seen.append(local.simple)
            }
            parentMovedOn.fire()
            await child?.value
        }.value
        #expect(seen.values == ["y", "z", "x", "b", "b", "c", "a", "g:y", "i:b"])
    }
}

/// Values seen by tasks running concurrently, in the order they were seen.
final class SeenValues: Sendable {
    private let seen = Mutex<[String]>([])

    func append(_ value: String) { seen.withLock { $0.append(value) } }

    var values: [String] { seen.withLock { $0 } }
}
