import Dispatch
import Foundation
import Locals
import Synchronization
import Testing

/// Runs `body` on a plain thread of a dispatch queue (outside any task), and returns its result.
func onQueue<T: Sendable>(_ queue: DispatchQueue = .global(), _ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        queue.async { continuation.resume(returning: body()) }
    }
}

@Suite("Snapshots: values that cross callbacks, event loops and queues")
struct SnapshotTests {
    // MARK: What run sees, by policy

    // What a run sees under each policy, of an `.overlay` child's writes, of the context's own
    // value and of a Local it holds nothing of is the table ModelCheckSnapshotTableTests checks
    // in the model and the library; these are the cases the table does not cover.

    @Test("an .overlay child's run, and the scopes it opens before and inside it, leave every child its own frame")
    func overlayChildRunKeepsFramesApart() async {
        let local = Local(inheritance: .overlay) { Sample() }
        let (released, release) = AsyncStream<Void>.makeStream()
        await local.withValue(\.simple, "outer") {
            await Task {
                local.late = "child wrote"  // an .overlay child with writes of its own
                local.withValue(\.simple, "first") {}  // leaves a frame for the next scope
                let snapshot = LocalsSnapshot.capture()
                var kept: Task<String, Never>?
                snapshot.run {
                    local.withValue(\.simple, "kept by a child") {
                        kept = Task {
                            for await _ in released { break }
                            return local.simple
                        }
                    }
                }
                local.withValue(\.simple, "second") {
                    #expect(local.simple == "second")
                }
                release.yield()
                #expect(await kept?.value == "kept by a child", "a later scope reused a frame a child still reads")
                #expect(local.late == "child wrote")
            }.value
        }
    }

    @Test("a Local that holds nothing for the capturing context is not in the snapshot")
    func nothingHeld() async {
        // What a run then shows of it (the initial value, or the running task's own) is a row of
        // the model check's snapshot table.
        let local = Local { Sample() }
        let snapshot = await Task { LocalsSnapshot.capture() }.value
        #expect(!snapshot.debugDescription.contains(local.description))
        local.simple = "now held"
        #expect(LocalsSnapshot.capture().debugDescription.contains(local.description), "the check cannot tell")
    }

    @Test("LocalsSnapshot() runs synchronous work as outside every scope: no Local of the caller is seen")
    func emptySnapshotSuppresses() async {
        let own = Local { Sample() }
        let scoped = Local(inheritance: .shared) { Sample() }
        let seen = await Task { () -> [String] in
            own.simple = "caller's"
            return await scoped.withValue(\.simple, "request") { () async -> [String] in
                let inside = LocalsSnapshot().run { [own.simple, scoped.simple] }
                let child = await LocalsSnapshot().run { () async -> String in
                    await Task { scoped.simple }.value
                }
                return inside + [child, own.simple, scoped.simple]
            }
        }.value
        #expect(seen == [Sample.initial, Sample.initial, Sample.initial, "caller's", "request"])
    }

    // MARK: Threads and sessions

    @Test("a .thread Local: run puts a copy of the capturing thread's value on the running thread, then restores")
    func threadLocal() async {
        let local = Local(.thread) { Sample() }
        let snapshot = await onQueue { () -> LocalsSnapshot in
            local.simple = "thread A"
            return LocalsSnapshot.capture()
        }
        let seen = await onNewThread { () -> [String] in
            local.simple = "thread B"
            let inRun = snapshot.run { () -> String in
                let seen = local.simple
                local.simple = "run wrote"
                return seen
            }
            return [inRun, local.simple]
        }
        #expect(seen == ["thread A", "thread B"])
    }

    @Test("a session: run makes the captured session current, whatever the discriminator says, and writes go to it")
    func session() async {
        let cart = Local(SessionDiscriminator()) { Sample() }
        let snapshot = SessionDiscriminator.$session.withValue("s-1") { () -> LocalsSnapshot in
            cart.simple = "session one"
            return LocalsSnapshot.capture()
        }
        let seen = await onQueue { () -> [String] in
            // No session here: reads would give the initial value.
            let plain = cart.simple
            let inRun = snapshot.run { () -> String in
                let seen = cart.simple
                cart.count += 1
                return seen
            }
            let other = SessionDiscriminator.$session.withValue("s-2") {
                snapshot.run { cart.simple }
            }
            return [plain, inRun, other]
        }
        #expect(seen == [Sample.initial, "session one", "session one"])
        #expect(SessionDiscriminator.$session.withValue("s-1") { cart.count } == 1)
        #expect(SessionDiscriminator.$session.withValue("s-2") { cart.simple } == Sample.initial)
    }

    // MARK: Nesting, children, throws

    @Test("runs nest and restore like scopes, and children created inside run inherit from it")
    func nestingAndChildren() async {
        let local = Local { Sample() }
        let outer = await Task { () -> LocalsSnapshot in
            local.withValue(\.simple, "outer") { LocalsSnapshot.capture() }
        }.value
        let inner = await Task { () -> LocalsSnapshot in
            local.withValue(\.simple, "inner") { LocalsSnapshot.capture() }
        }.value
        let seen = await Task { () -> [String] in
            var seen: [String] = []
            await outer.run {
                seen.append(local.simple)
                await inner.run {
                    seen.append(local.simple)
                    seen.append(await Task { local.simple }.value)
                    async let child = local.simple
                    seen.append(await child)
                }
                seen.append(local.simple)
            }
            seen.append(local.simple)
            return seen
        }.value
        #expect(seen == ["outer", "inner", "inner", "inner", "outer", Sample.initial])
    }

    struct Failure: Error, Equatable {}

    @Test("a throwing operation: the error comes out unchanged and the running context's own value is back")
    func throwingRun() async {
        let local = Local { Sample() }
        let snapshot = await Task { () -> LocalsSnapshot in
            local.withValue(\.simple, "captured") { LocalsSnapshot.capture() }
        }.value
        await Task {
            local.simple = "mine"
            #expect(throws: Failure.self) {
                try snapshot.run { () throws(Failure) in
                    local.simple = "written in run"
                    throw Failure()
                }
            }
            #expect(local.simple == "mine")
            await #expect(throws: Failure.self) {
                try await snapshot.run { () async throws(Failure) in
                    await Task.yield()
                    throw Failure()
                }
            }
            #expect(local.simple == "mine")
        }.value
    }

    @Test("a cancelled task's run restores too")
    func cancelledRun() async {
        let local = Local { Sample() }
        let snapshot = await Task { () -> LocalsSnapshot in
            local.withValue(\.simple, "captured") { LocalsSnapshot.capture() }
        }.value
        let task = Task { () -> [String] in
            local.simple = "mine"
            let inRun = await snapshot.run { () -> String in
                await waitUntilCancelled()
                return local.simple
            }
            return [inRun, local.simple]
        }
        task.cancel()
        #expect(await task.value == ["captured", "mine"])
    }

    // MARK: Lifetimes and concurrency

    @Test("a Local released between capture and run is skipped; a snapshot keeps no Local alive")
    func releasedLocal() async {
        weak var released: Local<Sample>?
        var local: Local<Sample>? = Local { Sample() }
        released = local
        let kept = Local { Sample() }
        let snapshot = await Task { [local] () -> LocalsSnapshot in
            local!.simple = "gone"
            kept.simple = "kept"
            return LocalsSnapshot.capture()
        }.value
        #expect(snapshot.count >= 2)
        local = nil
        #expect(released == nil, "the snapshot kept a Local alive")
        let seen = await onQueue { snapshot.run { kept.simple } }
        #expect(seen == "kept")
    }

    @Test("one snapshot, run from many threads at once: each run has its own copy")
    func concurrentRuns() async {
        let local = Local { Sample() }
        let snapshot = await Task { () -> LocalsSnapshot in
            local.withValue(\.id, 7) { LocalsSnapshot.capture() }
        }.value
        let results = await withTaskGroup(of: Bool.self) { group in
            for index in 0..<64 {
                group.addTask {
                    await onQueue {
                        snapshot.run { () -> Bool in
                            let start = local.id == 7
                            for round in 0..<50 {
                                local.count = index * 1_000 + round
                                if local.count != index * 1_000 + round { return false }
                            }
                            return start
                        }
                    }
                }
            }
            return await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(results.count == 64)
        #expect(!results.contains(false), "runs of one snapshot shared a value")
    }

    // MARK: Listing, conveniences

    @Test("the debug description lists each Local by name with its value and where its scope was opened")
    func debugDescription() async {
        let local = Local(name: "request") { Sample() }
        let line = #line + 1
        let snapshot = local.withValue(\.simple, "listed") { LocalsSnapshot.capture() }
        let text = snapshot.debugDescription
        #expect(text.contains("\"request\""), "\(text)")
        #expect(text.contains("listed"), "\(text)")
        #expect(text.contains("SnapshotTests.swift:\(line)"), "\(text)")
        #expect(local.description.contains("\"request\""))
    }

    @Test("bind wraps a closure so that it runs under a snapshot taken when it was wrapped")
    func bindWraps() async {
        let local = Local { Sample() }
        let handler = local.withValue(\.simple, "at bind") {
            LocalsSnapshot.bind { (suffix: String) -> String in local.simple + suffix }
        }
        #expect(await onQueue { handler("!") } == "at bind!")
        #expect(handler("?") == "at bind?", "called outside the scope, the handler still reads the snapshot")
    }

    @Test("asyncWithLocals: blocks on a queue each read their own submitter's values; plain blocks on one thread share")
    func dispatchHelper() async {
        let local = Local { Sample() }
        let queue = DispatchQueue(label: "a serial queue")
        let seen = Protected([String]())
        await withTaskGroup(of: Void.self) { group in
            for request in 0..<20 {
                group.addTask {
                    await local.withValue(\.simple, "request \(request)") {
                        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
                            queue.asyncWithLocals {
                                seen.withLock { $0.append("\(request)=\(local.simple)") }
                                done.resume()
                            }
                        }
                    }
                }
            }
        }
        let lines = seen.withLock { $0 }
        #expect(lines.count == 20)
        for line in lines {
            let parts = line.components(separatedBy: "=")
            #expect(parts[1] == "request \(parts[0])", "a block read another request's value: \(line)")
        }
        // Without it, a block sees the value of the thread it runs on, which the last block that
        // wrote there left behind: shown on one thread that runs blocks in turn, as an event loop
        // does (a serial queue may move from thread to thread between blocks).
        let loop = OneThreadLoop()
        defer { loop.stop() }
        let leaked = await loop.run { () -> String in
            local.simple = "left by an earlier block"
            return local.simple
        }
        let next = await loop.run { local.simple }
        #expect(leaked == next, "a plain block did not share the thread's value")
    }
}
