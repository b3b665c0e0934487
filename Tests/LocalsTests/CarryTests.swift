import Dispatch
import Locals
import Synchronization
import Testing

// Registration lasts for the life of the process, so each test carries task-locals of its own.
enum Carried {
    @TaskLocal static var syncRun: String = "default"
    @TaskLocal static var asyncRun: String = "default"
    @TaskLocal static var children: String = "default"
    @TaskLocal static var unbound: String = "default"
    @TaskLocal static var twice: String = "default"
    @TaskLocal static var neverRegistered: String = "default"
    @TaskLocal static var emptySnapshot: String = "default"
    @TaskLocal static var listed: String? = nil
    @TaskLocal static var later: String = "default"
}

/// A context reached through functions: a task-local that it binds in `withValue`. It counts the
/// bindings of the value equal to its id only, since every snapshot that any test runs meanwhile
/// binds every registered context.
struct CountingContext: CarriedContext {
    @TaskLocal static var value = 0
    /// A lock Thread Sanitizer sees (`Synchronization.Mutex` waits with raw futex calls on
    /// Linux, and its guarded accesses read as races when two threads contend).
    static let bindings = Protected<[Int: Int]>([:])

    /// Tells contexts apart (and counts per context), so that tests do not share one.
    let id: Int

    var currentValue: Int { Self.value }

    func withValue(_ value: Int, operation: () -> Void) {
        if value == id { Self.bindings.withLock { $0[id, default: 0] += 1 } }
        Self.$value.withValue(value, operation: operation)
    }

    func withValue(_ value: Int, isolation: isolated (any Actor)?, operation: () async -> Void) async {
        if value == id { Self.bindings.withLock { $0[id, default: 0] += 1 } }
        await Self.$value.withValue(value, operation: operation, isolation: isolation)
    }

    var bindingCount: Int { Self.bindings.withLock { $0[id, default: 0] } }
}

@Suite("Snapshots carry registered task-locals")
struct CarryTests {
    @Test("a synchronous run binds the captured value and restores the caller's binding")
    func syncRun() async {
        LocalsSnapshot.carry(Carried.$syncRun)
        let snapshot = Carried.$syncRun.withValue("request") { LocalsSnapshot.capture() }
        let seen = await onQueue { () -> [String] in
            Carried.$syncRun.withValue("queue's own") {
                let inside = snapshot.run { Carried.syncRun }
                return [inside, Carried.syncRun]
            }
        }
        #expect(seen == ["request", "queue's own"])
    }

    @Test("an async run binds the captured value and restores the caller's binding")
    func asyncRun() async {
        LocalsSnapshot.carry(Carried.$asyncRun)
        let snapshot = Carried.$asyncRun.withValue("request") { LocalsSnapshot.capture() }
        let seen = await Task.detached { () -> [String] in
            await Carried.$asyncRun.withValue("runner's own") { () async -> [String] in
                let inside = await snapshot.run { () async -> String in
                    await Task.yield()
                    return Carried.asyncRun
                }
                return [inside, Carried.asyncRun]
            }
        }.value
        #expect(seen == ["request", "runner's own"])
    }

    @Test("children created inside run see the carried value", arguments: ChildKind.core)
    func children(_ kind: ChildKind) async {
        LocalsSnapshot.carry(Carried.$children)
        let snapshot = Carried.$children.withValue("request") { LocalsSnapshot.capture() }
        let seen = await Task.detached {
            await snapshot.run { await inChild(kind) { Carried.children } }
        }.value
        #expect(seen == "request")
    }

    @Test("a task-local unbound at the capture is bound to its default inside run")
    func unboundAtCapture() async {
        LocalsSnapshot.carry(Carried.$unbound)
        let snapshot = await Task.detached { LocalsSnapshot.capture() }.value
        let seen = Carried.$unbound.withValue("caller's own") { snapshot.run { Carried.unbound } }
        #expect(seen == "default")
    }

    @Test("an empty snapshot binds carried task-locals to their defaults")
    func emptySnapshot() async {
        LocalsSnapshot.carry(Carried.$emptySnapshot)
        let seen = await Carried.$emptySnapshot.withValue("request") { () async -> [String] in
            let empty = LocalsSnapshot()
            let sync = empty.run { Carried.emptySnapshot }
            let async = await empty.run { () async -> String in Carried.emptySnapshot }
            let child = await empty.run { await Task { Carried.emptySnapshot }.value }
            return [sync, async, child, Carried.emptySnapshot]
        }
        #expect(seen == ["default", "default", "default", "request"])
    }

    @Test("a task-local never registered is not carried")
    func neverRegistered() async {
        let snapshot = Carried.$neverRegistered.withValue("request") { LocalsSnapshot.capture() }
        let seen = await onQueue { snapshot.run { Carried.neverRegistered } }
        #expect(seen == "default")
    }

    @Test("only snapshots taken after the registration carry it")
    func registeredLater() async {
        let before = Carried.$later.withValue("request") { LocalsSnapshot.capture() }
        LocalsSnapshot.carry(Carried.$later)
        let after = Carried.$later.withValue("request") { LocalsSnapshot.capture() }
        let seen = await onQueue { [before.run { Carried.later }, after.run { Carried.later }] }
        #expect(seen == ["default", "request"])
    }

    @Test("registering twice carries it once")
    func registeredTwice() async {
        LocalsSnapshot.carry(Carried.$twice)
        LocalsSnapshot.carry(Carried.$twice)
        let context = CountingContext(id: 2)
        LocalsSnapshot.carry(context)
        LocalsSnapshot.carry(CountingContext(id: 2))
        let snapshot = Carried.$twice.withValue("request") {
            CountingContext.$value.withValue(2) { LocalsSnapshot.capture() }
        }
        let listed = snapshot.debugDescription.split(separator: "\n").filter { $0.contains("TaskLocal<String> = request (carried)") }
        #expect(listed.count == 1, "\(snapshot.debugDescription)")
        await onQueue { snapshot.run {} }
        #expect(context.bindingCount == 1)
    }

    @Test("a carried context reached through functions: sync and async run bind it, then restore")
    func carriedContext() async {
        let context = CountingContext(id: 42)
        LocalsSnapshot.carry(context)
        let snapshot = CountingContext.$value.withValue(42) { LocalsSnapshot.capture() }
        let sync = await onQueue { [snapshot.run { CountingContext.value }, CountingContext.value] }
        let async = await Task.detached { () -> [Int] in
            [await snapshot.run { () async -> Int in await Task { CountingContext.value }.value }, CountingContext.value]
        }.value
        #expect(sync == [42, 0])
        #expect(async == [42, 0])
        #expect(context.bindingCount == 2)
    }

    @Test("registering from many threads at once registers each context once")
    func concurrentRegistration() async {
        let ids = 100 ..< 108
        await onQueue {
            DispatchQueue.concurrentPerform(iterations: 64) { index in
                LocalsSnapshot.carry(CountingContext(id: ids.lowerBound + index % ids.count))
            }
        }
        let lines = LocalsSnapshot.capture().debugDescription.split(separator: "\n")
        for id in ids {
            #expect(lines.filter { $0.contains("CountingContext(id: \(id)) =") }.count == 1)
        }
    }

    @Test("the debug description lists each carried task-local and its value")
    func listed() {
        LocalsSnapshot.carry(Carried.$listed)
        let snapshot = Carried.$listed.withValue("t-1") { LocalsSnapshot.capture() }
        #expect(snapshot.debugDescription.contains("TaskLocal<Optional<String>> = Optional(\"t-1\") (carried)"))
    }
}
