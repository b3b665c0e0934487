import Foundation
import Locals
import Testing

@Suite("Synchronous snapshot runs: every part in place at once, published to children")
struct SnapshotRunTests {
    @Test("a Task {} created inside a synchronous run inherits every part, by its scope's policy")
    func childrenOfASynchronousRun() async {
        #expect(await ChildOfSynchronousRun.observe() == ChildOfSynchronousRun.expected)
    }

    #if compiler(>=6.2)
    @Test("a synchronous run of a snapshot of 3,000 Locals puts each in place on a thread with a 128 KiB stack")
    func synchronousRunOfManyLocals() async {
        await #expect(processExitsWith: .success) {
            // The run that nests a call per part (forced below) needs a frame per Local.
            unsetenv("LOCALS_FORCE_FALLBACK")
            exit(ManyLocals.runOnSmallStack(locals: 3_000) ? 0 : 1)
        }
    }

    #if DEBUG
    @Test("where the runtime's task-local push is not used, a synchronous run nests its parts and keeps every rule")
    func nestedRunWithoutTaskLocalPush() async {
        await #expect(processExitsWith: .success) {
            setenv("LOCALS_FORCE_FALLBACK", "taskLocalPush", 1)
            let many = ManyLocals.runOnSmallStack(locals: 10, stackSize: 8 << 20)
            let children = await ChildOfSynchronousRun.observe() == ChildOfSynchronousRun.expected
            // A distinct code per check, so that a failure says which one.
            exit(!many ? 2 : !children ? 3 : 0)
        }
    }
    #endif
    #endif
}

/// A child created inside a synchronous run, checked with and without the runtime's task-local
/// push: the run's parts must reach it however the run put them in place.
enum ChildOfSynchronousRun {
    /// What the child reads of an own value and of a `.shared` scope (after writing the scope),
    /// what a later run reads of the scope, and what the caller reads of both afterwards.
    static let expected = ["own value", "child wrote", "child wrote", Sample.initial, Sample.initial]

    /// Captures an own value of one Local and a `.shared` scope of another, creates a `Task {}`
    /// inside a synchronous run of the snapshot that writes the scope, and returns what `expected`
    /// lists.
    static func observe() async -> [String] {
        let copied = Local { Sample() }
        let shared = Local(inheritance: .shared) { Sample() }
        let snapshot = await Task { () -> LocalsSnapshot in
            copied.simple = "own value"
            return shared.withValue(\.simple, "shared scope") { LocalsSnapshot.capture() }
        }.value
        let child = await Task { () -> Task<[String], Never> in
            snapshot.run {
                Task { () -> [String] in
                    shared.simple = "child wrote"
                    return [copied.simple, shared.simple]
                }
            }
        }.value
        let seen = await child.value
        // The child's write must have reached the shared scope itself.
        return seen + [snapshot.run { shared.simple }, copied.simple, shared.simple]
    }
}

enum ManyLocals {
    /// Makes `count` Locals with values of their own, and three more inside a `.shared`, an
    /// `.overlay` and a `.copy` scope; captures them all, and runs the snapshot on a plain thread
    /// with a 128 KiB stack: far less than one stack frame per Local. True if every Local read its
    /// captured value inside the run and its own again afterwards.
    static func runOnSmallStack(locals count: Int, stackSize: Int = 128 << 10) -> Bool {
        let locals = (0..<count).map { _ in Local { -1 } }
        let scoped = [Inheritance.shared, .overlay, .copy].map { Local(inheritance: $0) { -1 } }
        let snapshot = onThread(stackSize: 8 << 20) { () -> LocalsSnapshot in
            for (index, local) in locals.enumerated() {
                local.value = index
            }
            return scoped[0].withValues({ $0 = 0 }) {
                scoped[1].withValues({ $0 = 1 }) {
                    scoped[2].withValues({ $0 = 2 }) { LocalsSnapshot.capture() }
                }
            }
        }
        guard let snapshot, snapshot.count == count + scoped.count else { return false }
        let all = locals + scoped
        let expected = Array(0..<count) + [0, 1, 2]
        return onThread(stackSize: stackSize) { () -> Bool in
            let inside = snapshot.run { all.map(\.value) == expected }
            return inside && all.allSatisfy { $0.value == -1 }
        } ?? false
    }

    private static func onThread<T: Sendable>(stackSize: Int, _ body: @escaping @Sendable () -> T) -> T? {
        onNewThreadBlocking(timeout: .seconds(120), stackSize: stackSize, body)
    }
}

@Suite("Snapshots taken inside a run")
struct SnapshotInsideRunTests {
    @Test("a snapshot taken inside a synchronous run carries what the run wrote, hop after hop")
    func captureInsideRun() async {
        let local = Local(name: "hop-after-hop") { Sample() }
        var snapshot = await Task { () -> LocalsSnapshot in
            local.simple = "hop 0"
            return LocalsSnapshot.capture()
        }.value
        // Each hop runs the last snapshot on a queue thread, writes, and captures the next one.
        for hop in 1...50 {
            let previous = snapshot
            snapshot = await onQueue { () -> LocalsSnapshot in
                previous.run { () -> LocalsSnapshot in
                    #expect(local.simple == "hop \(hop - 1)")
                    local.simple = "hop \(hop)"
                    return LocalsSnapshot.capture()
                }
            }
        }
        let last = snapshot
        #expect(await onQueue { last.run { local.simple } } == "hop 50")
        // One entry of this Local, not one a hop. (Not `count`: a queue thread may also hold a
        // `.thread` value that another test, running at the same time, left on it.)
        let entries = last.debugDescription.split(separator: "\n").filter { $0.contains("\"hop-after-hop\"") }
        #expect(entries.count == 1)
    }

    @Test("a .thread scope's value is in a snapshot taken inside it")
    func threadScopeIsCaptured() async {
        let perThread = Local(.thread) { Sample() }
        let snapshot = await onQueue { () -> LocalsSnapshot in
            perThread.withValue(\.simple, "scoped") { LocalsSnapshot.capture() }
        }
        #expect(await onQueue { snapshot.run { perThread.simple } } == "scoped")
    }
}
