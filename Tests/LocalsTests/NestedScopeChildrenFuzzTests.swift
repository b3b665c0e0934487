import Foundation
import Locals
import Synchronization
import Testing

/// Random nests of synchronous scopes of three Locals (one per sharing policy) and of an
/// application's `@TaskLocal`, with children of every kind a synchronous operation can create
/// (`Task {}`, `Task.immediate`, task-group children, immediate ones too) and snapshots made at
/// random depths. Nested synchronous scopes share one binding, written in place: each child and
/// snapshot must see the scopes open where it was made, at once and after its parent has moved
/// on to other scopes in the same binding.
@Suite("Nested synchronous scopes: children and snapshots made at random depths see where they were made")
struct NestedScopeChildrenFuzzTests {
    enum Application {
        @TaskLocal static var user = "none"
    }

    @Test("random nests of scopes, children and snapshots", arguments: 0..<200)
    func randomNests(seed: Int) async {
        let locals = [
            Local(inheritance: .copy) { Sample() },
            Local(inheritance: .shared) { Sample() },
            Local(inheritance: .overlay) { Sample() },
        ]
        @Sendable func current() -> String { locals.map(\.simple).joined(separator: ",") + "|" + Application.user }
        let mismatches = SeenValues()
        @Sendable func check(_ what: String, _ seen: String, _ expected: String) {
            if seen != expected { mismatches.append("\(what): \(seen), expected \(expected)") }
        }
        let moveOn = Signal()  // fired once the parent has left every scope
        let children = TaskList()
        let snapshots = Mutex<[(LocalsSnapshot, String)]>([])
        let executor = AlternatingExecutor()
        defer { executor.stop() }
        var random = ModelRandom(seed: UInt64(seed))

        await withTaskGroup(of: Void.self) { group in
            var counter = 0
            func nest(_ depth: Int) {
                for _ in 0..<Int.random(in: 1...4, using: &random) {
                    counter += 1
                    let tag = "s\(counter)"
                    let expected = current()
                    switch Int.random(in: 0..<100, using: &random) {
                    case 0..<40 where depth < 6:
                        locals[Int.random(in: 0..<3, using: &random)].withValue(\.simple, tag) { nest(depth + 1) }
                    case 40..<48 where depth < 6:
                        Application.$user.withValue(tag) { nest(depth + 1) }
                    case 48..<58:
                        children.append(Task {
                            check("Task {}", current(), expected)
                            await moveOn.wait()
                            check("Task {} later", current(), expected)
                        })
                    case 58..<70:
                        let preference: (any TaskExecutor)? = Bool.random(using: &random) ? executor : nil
                        group.addTask(executorPreference: preference) {
                            check("group child", current(), expected)
                            locals[0].withValue(\.simple, "c") { locals[0].withValue(\.simple, "d") {} }
                            await moveOn.wait()
                            check("group child later", current(), expected)
                        }
                    case 70..<76:
                        group.addImmediateTask {
                            check("immediate group child", current(), expected)
                            await moveOn.wait()
                            check("immediate group child later", current(), expected)
                        }
                    case 76..<82:
                        // Runs here, with copies of the bindings of scopes that stay open
                        // around it, until it first suspends: its own scopes must not write
                        // into those copies, which its group's children link to.
                        children.append(Task.immediate {
                            check("Task.immediate", current(), expected)
                            await withTaskGroup(of: Void.self) { inner in
                                locals[1].withValue(\.simple, "i1") {
                                    locals[2].withValue(\.simple, "i2") {
                                        let made = current()
                                        inner.addTask {
                                            await moveOn.wait()
                                            check("Task.immediate's group child later", current(), made)
                                        }
                                    }
                                    locals[2].withValue(\.simple, "i3") {}
                                }
                            }
                            check("Task.immediate later", current(), expected)
                        })
                    case 82..<90:
                        let snapshot = LocalsSnapshot.capture()
                        let values = String(expected.split(separator: "|")[0])
                        check("run", snapshot.run { locals.map(\.simple).joined(separator: ",") }, values)
                        snapshots.withLock { $0.append((snapshot, values)) }
                    default:
                        check("read", current(), expected)
                    }
                }
            }
            for _ in 0..<3 { nest(0) }
            moveOn.fire()
        }
        for child in children.all { await child.value }
        for (snapshot, values) in snapshots.withLock({ $0 }) {
            let seen = await Task.detached { snapshot.run { locals.map(\.simple).joined(separator: ",") } }.value
            check("run on another task", seen, values)
        }
        #expect(mismatches.values == [], "seed \(seed)")
    }
}

/// Tasks started by a test, awaited at its end.
final class TaskList: Sendable {
    private let tasks = Mutex<[Task<Void, Never>]>([])

    func append(_ task: Task<Void, Never>) { tasks.withLock { $0.append(task) } }

    var all: [Task<Void, Never>] { tasks.withLock { $0 } }
}
