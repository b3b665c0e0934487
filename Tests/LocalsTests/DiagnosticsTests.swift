#if DEBUG
@testable import Locals
import Testing

/// The debug-build warnings for the two classic mistakes: a `.task` Local touched outside any
/// task, and a child task reading the initial value where its parent wrote one outside any scope.
/// Each test names its Locals uniquely and looks only at warnings about them (tests run at once).
@Suite("Diagnostics: debug builds warn once per Local about the two classic mistakes")
struct DiagnosticsTests {
    /// Every warning said since the first test installed the collector.
    static let said: Protected<[(Diagnostics.Mistake, String)]> = {
        let said = Protected<[(Diagnostics.Mistake, String)]>([])
        Diagnostics.handler.withLock { handler in
            handler = { mistake, text in said.withLock { $0.append((mistake, text)) } }
        }
        return said
    }()

    static func warnings(about name: String) -> [Diagnostics.Mistake] {
        said.withLock { $0.filter { $0.1.contains("\"\(name)\"") }.map(\.0) }
    }

    @Test("a .task Local touched outside any task is said once, naming the Local and the fix")
    func touchedOutsideTask() async {
        _ = Self.said
        let local = Local(name: "diag-outside") { Sample() }
        await onNewThread {
            local.simple = "thread's"
            _ = local.simple
        }
        await onNewThread { _ = local.simple }
        #expect(Self.warnings(about: "diag-outside") == [.touchedOutsideTask])
        let text = Self.said.withLock { $0.first { $0.1.contains("diag-outside") }?.1 } ?? ""
        #expect(text.contains("LocalsSnapshot") && text.contains("Local(.thread)"))
    }

    @Test("touches inside a task, inside a snapshot's run on a thread, and of a .thread Local say nothing")
    func noWarningWhereMeant() async {
        _ = Self.said
        let inTask = Local(name: "diag-in-task") { Sample() }
        let inRun = Local(name: "diag-in-run") { Sample() }
        let perThread = Local(.thread, name: "diag-per-thread") { Sample() }
        await Task { inTask.simple = "task's" }.value
        let snapshot = await Task { LocalsSnapshot.capture() }.value
        await onNewThread {
            snapshot.run { _ = inRun.simple }
            perThread.simple = "thread's"
        }
        for name in ["diag-in-task", "diag-in-run", "diag-per-thread"] {
            #expect(Self.warnings(about: name).isEmpty, "\(name)")
        }
    }

    @Test("a child task that reads the initial value where its parent wrote one is said once",
          .enabled(if: TaskRuntime.facts.parentOffset != nil, "needs the runtime's parent pointer"))
    func childMissedParentValue() async {
        _ = Self.said
        let local = Local(name: "diag-child") { Sample() }
        let scoped = Local(name: "diag-child-scoped") { Sample() }
        await Task {
            local.simple = "parent's own"
            async let first = local.simple
            async let second = local.simple
            #expect(await [first, second] == [Sample.initial, Sample.initial])
            await withTaskGroup(of: String.self) { group in
                group.addTask { local.simple }
                _ = await group.next()
            }
            // A scope is inherited: nothing to say.
            await scoped.withValue(\.simple, "scoped") {
                async let seen = scoped.simple
                #expect(await seen == "scoped")
            }
        }.value
        #expect(Self.warnings(about: "diag-child") == [.childMissedParentValue])
        #expect(Self.warnings(about: "diag-child-scoped").isEmpty)
    }
}
#endif

#if DEBUG && compiler(>=6.2)
@testable import Locals
import Testing

/// Every change of a cell's route is checked in debug builds: a transition that leaves a cell
/// inconsistent stops the program at once, instead of misreading a value later.
@Suite("Cell transitions: debug builds check each route")
struct CellRouteTests {
    @Test("a cell pointed into a shared scope with no scope stops the program")
    func sharedRouteWithoutScope() async {
        await #expect(processExitsWith: .failure) {
            let cell = OwnedCell(Sample(), owner: OwnerKey(address: 0, id: 1), record: nil)
            cell.point(to: .sharedScope, nil)
        }
    }

    @Test("a cell with no value of its own routed to its own value stops the program")
    func ownRouteWithoutValue() async {
        await #expect(processExitsWith: .failure) {
            let cell = Cell<Sample>(owner: OwnerKey(address: 0, id: 1), record: nil, route: .scope, scope: nil)
            cell.point(to: .own, nil)
        }
    }
}
#endif
