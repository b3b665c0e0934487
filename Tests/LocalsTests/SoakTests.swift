// A soak test, off by default: LOCALS_SOAK_SECONDS=600 swift test --filter SoakTests
//
// For the chosen time, a mixed load runs at once: requests (a scope per request, children of
// every kind under every policy), plain short tasks and fire-and-forget tasks, long-lived and
// short-lived plain threads (`.thread` and the `.task` fallback), and sessions (a custom
// discriminator) shared by many tasks and discarded when they end. Every worker checks that it
// sees only its own values (or its scope's, by the policy) throughout. Resident memory is sampled
// from /proc/self/status and must stay flat after a warm-up; every stored value carries a tracked
// object, and at the end every one of them must have been released.
//
// Two workers check what the library keeps of ended tasks and of migrated scopes:
// - Results: fire-and-forget tasks touch a Local and return 64 KiB each, their handles dropped.
//   The library pins each task it stores a value for until a later first touch sweeps its cell,
//   and a pinned task object keeps its result: once a round's tasks have returned, new first
//   touches must retire all but a handful of them (counted by the results' deinits).
// - Migrating `.thread` scopes: a long-lived plain thread starts async scopes on a `.thread` Local
//   with `Task.immediate`; each resumes on the global pool and ends there, so it restores the
//   thread's value from elsewhere and sets the scope's value aside (the thread may be reading it).
//   The thread's next touch must release it. (Where `Task.immediate` exists: Swift 6.2, macOS 26.)

import Foundation
import Locals
import Synchronization
import Testing

/// The value every Local of the soak stores.
struct SoakValue: Sendable {
    var id = -1
    var count = 0
    var payload: [UInt8] = []
    var tracked: Tracked?
}

/// What a fire-and-forget task of the results worker returns: 64 KiB, and a tracked object that
/// counts its release. A task object keeps its result until the object itself goes.
struct SoakResult: Sendable {
    static let size = 64 * 1024
    var bytes: [UInt8]
    var tracked: Tracked
}

struct SoakSessionDiscriminator: Discriminator {
    @TaskLocal static var session: Int?
    var currentKey: Int? { Self.session }
}

/// Counters and the first few violations, shared by every worker.
final class SoakLedger: Sendable {
    let violations = Atomic<Int>(0)
    let operations = Atomic<Int>(0)
    let created = Atomic<Int>(0)
    let released = DeinitCounter()
    let inFlight = Atomic<Int>(0)
    let requests = Atomic<Int>(0)
    let tasks = Atomic<Int>(0)
    let sessions = Atomic<Int>(0)
    let threadRounds = Atomic<Int>(0)
    let threads = Atomic<Int>(0)
    let discardsFromElsewhere = Atomic<Int>(0)
    /// Results of the results worker's tasks: made, and released (the task object went).
    let resultsMade = Atomic<Int>(0)
    let resultsReleased = DeinitCounter()
    let resultRounds = Atomic<Int>(0)
    /// The most results held at once, right after a round's tasks returned.
    let mostResultsHeld = Protected(0)
    /// Values `.thread` scopes that ended on another thread set aside for their starting thread.
    let setAsideMade = Atomic<Int>(0)
    let setAsideReleased = DeinitCounter()
    let migratedScopes = Atomic<Int>(0)
    private let messages = Protected<[String]>([])
    private let ids = Atomic<Int>(0)

    func nextID() -> Int { ids.add(1, ordering: .relaxed).newValue }

    /// A tracked object (its release is counted), to store in a value.
    func tracked() -> Tracked {
        created.add(1, ordering: .relaxed)
        return released.make()
    }

    /// Results made and not released yet: the round's own tasks, and ended tasks still kept.
    var resultsHeld: Int {
        // Made first: a result made after this read cannot make the count negative.
        let made = resultsMade.load(ordering: .relaxed)
        return made - resultsReleased.count
    }

    /// A tracked object for a value that a migrating scope will set aside.
    func setAside() -> Tracked {
        setAsideMade.add(1, ordering: .relaxed)
        return setAsideReleased.make()
    }

    /// A payload that makes a leak visible in resident memory: 4 KiB once in 8 values.
    func payload(_ id: Int) -> [UInt8] {
        id % 8 == 0 ? [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: 4_096) : []
    }

    func check(_ condition: Bool, _ message: @autoclosure () -> String) {
        operations.add(1, ordering: .relaxed)
        guard !condition else { return }
        violations.add(1, ordering: .relaxed)
        let text = message()
        messages.withLock { if $0.count < 20 { $0.append(text) } }
    }

    var firstViolations: [String] { messages.withLock { $0 } }

    var summary: String {
        "\(requests.load(ordering: .relaxed)) requests, \(tasks.load(ordering: .relaxed)) plain tasks, "
            + "\(sessions.load(ordering: .relaxed)) sessions, \(threads.load(ordering: .relaxed)) short-lived threads, "
            + "\(threadRounds.load(ordering: .relaxed)) thread rounds, "
            + "\(discardsFromElsewhere.load(ordering: .relaxed)) discards from elsewhere, "
            + "\(resultRounds.load(ordering: .relaxed)) rounds of 64 KiB results, "
            + "\(migratedScopes.load(ordering: .relaxed)) .thread scopes that ended elsewhere; "
            + "\(operations.load(ordering: .relaxed)) checks, \(violations.load(ordering: .relaxed)) violations"
    }
}

/// Resident memory of this process, in KiB (VmRSS), or nil where /proc is missing.
func residentKiB() -> Int? {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
    for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
        return Int(line.split(separator: " ").dropFirst().first ?? "")
    }
    return nil
}

struct SoakLocals: Sendable {
    let request = Local { SoakValue() }
    let overlay = Local(inheritance: .overlay) { SoakValue() }
    let thread = Local(.thread) { SoakValue() }
    let session = Local(SoakSessionDiscriminator()) { SoakValue() }
    /// Touched only by the results worker, so that only its tasks' first touches sweep it.
    let results = Local { SoakValue() }
}

@Suite("Soak: a mixed load of tasks, threads and sessions, isolation and flat memory (LOCALS_SOAK_SECONDS)")
struct SoakTests {
    static let seconds = ProcessInfo.processInfo.environment["LOCALS_SOAK_SECONDS"].flatMap { Double($0) }

    @Test("mixed load: every worker sees only its own values, memory stays flat, every value is released",
          .enabled(if: seconds != nil, "set LOCALS_SOAK_SECONDS to run the soak"))
    func soak() async {
        let duration = Self.seconds ?? 0
        let ledger = SoakLedger()
        let locals = SoakLocals()
        let stop = Signal()
        let clock = ContinuousClock()
        let start = clock.now
        let rssAtStart = residentKiB() ?? 0
        let samples = Protected<[(seconds: Double, kib: Int, alive: Int)]>([])

        func log(_ text: String) { print("Soak: \(text)") }
        log("running \(duration) s; VmRSS at start \(rssAtStart / 1024) MiB")

        // Plain threads: long-lived ones loop; a spawner starts short-lived ones.
        let threadsDone = Latch(5)
        for worker in 0..<3 {
            Thread {
                while !stop.isFired {
                    Self.threadRound(locals, ledger, worker: worker)
                }
                threadsDone.arrive()
            }.start()
        }
        Thread {
            while !stop.isFired { Self.shortLivedThread(locals, ledger) }
            threadsDone.arrive()
        }.start()
        #if compiler(>=6.2)
        if immediateTasksAvailable {
            Thread {
                while !stop.isFired { Self.migratingScopeRound(locals, ledger) }
                threadsDone.arrive()
            }.start()
        } else {
            log("no Task.immediate on this OS: no migrating .thread scopes")
            threadsDone.arrive()
        }
        #else
        log("no Task.immediate before Swift 6.2: no migrating .thread scopes")
        threadsDone.arrive()
        #endif

        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<4 {
                group.addTask {
                    while !stop.isFired { await Self.requestRound(locals, ledger) }
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    while !stop.isFired { await Self.plainTaskRound(locals, ledger) }
                }
            }
            for _ in 0..<2 {
                group.addTask {
                    while !stop.isFired { await Self.sessionRound(locals, ledger) }
                }
            }
            group.addTask {
                while !stop.isFired { await Self.resultRound(locals, ledger) }
            }
            // The clock: samples memory, reports progress, and stops the load.
            group.addTask {
                var next = 10.0
                while true {
                    try? await Task.sleep(for: .seconds(1))
                    let elapsed = Double((clock.now - start).components.seconds)
                    let kib = residentKiB() ?? 0
                    // Released first: a value created after this read cannot make the count negative.
                    let released = ledger.released.count
                    let alive = ledger.created.load(ordering: .relaxed) - released
                    samples.withLock { $0.append((elapsed, kib, alive)) }
                    if elapsed >= next {
                        log("\(Int(elapsed)) s: \(ledger.summary); VmRSS \(kib / 1024) MiB, "
                            + "\(alive) tracked values alive")
                        next += 10
                    }
                    if elapsed >= duration {
                        stop.fire()
                        return
                    }
                }
            }
        }
        await threadsDone.wait()
        // Fire-and-forget tasks may still run: wait for them.
        let settled = await eventually(timeout: .seconds(60)) { ledger.inFlight.load(ordering: .relaxed) == 0 }
        #expect(settled, "fire-and-forget tasks did not finish")

        // Ended tasks are released lazily: as many new tasks again touch each Local.
        for _ in 0..<4_096 {
            await Task {
                locals.request.count += 1
                locals.overlay.count += 1
                locals.results.count += 1
            }.value
        }
        let created = ledger.created.load(ordering: .relaxed)
        let allReleased = await ledger.released.wait(untilAtLeast: created, timeout: .seconds(60))
        let results = ledger.resultsMade.load(ordering: .relaxed)
        let allResultsReleased = await ledger.resultsReleased.wait(untilAtLeast: results, timeout: .seconds(60))
        let setAside = ledger.setAsideMade.load(ordering: .relaxed)
        let allSetAsideReleased = await ledger.setAsideReleased.wait(untilAtLeast: setAside, timeout: .seconds(60))
        let rssAtEnd = residentKiB() ?? 0
        let history = samples.withLock { $0 }
        let warmUp = min(30, duration / 4)
        let warm = history.first { $0.seconds >= warmUp }?.kib ?? rssAtStart
        let peak = history.map(\.kib).max() ?? rssAtEnd
        let mostAlive = history.filter { $0.seconds >= warmUp }.map(\.alive).max() ?? 0
        log("""
            done after \(Int(Double((clock.now - start).components.seconds))) s: \(ledger.summary); \
            \(created) tracked values stored, \(ledger.released.count) released; \
            VmRSS start \(rssAtStart / 1024) MiB, after warm-up \(warm / 1024) MiB, peak \(peak / 1024) MiB, \
            end \(rssAtEnd / 1024) MiB; at most \(mostAlive) tracked values alive at once after warm-up; \
            \(results) results of 64 KiB made, \(ledger.resultsReleased.count) released, at most \
            \(ledger.mostResultsHeld.withLock { $0 }) held right after a round returned; \
            \(setAside) values set aside by migrated scopes, \(ledger.setAsideReleased.count) released
            """)
        #expect(ledger.violations.load(ordering: .relaxed) == 0, "\(ledger.firstViolations.joined(separator: "\n"))")
        #expect(allReleased, "\(created - ledger.released.count) of \(created) stored values were never released")
        #expect(allResultsReleased,
                "\(results - ledger.resultsReleased.count) of \(results) ended tasks' results were never released")
        #expect(allSetAsideReleased,
                "\(setAside - ledger.setAsideReleased.count) of \(setAside) values set aside were never released")
        // Under load a few hundred values are alive at once (one per running task, thread and
        // session, plus ended tasks' values not yet swept): values kept past their owner's end pile up.
        #expect(mostAlive < 5_000, "up to \(mostAlive) stored values were alive at once")
        // Flat: what a leak of one value per request, task or thread would exceed many times over.
        // (Not under Address Sanitizer: its quarantine keeps freed memory resident by design.)
        #expect(runningUnderAddressSanitizer || rssAtEnd - warm < 64 * 1024,
                "VmRSS grew from \(warm / 1024) MiB to \(rssAtEnd / 1024) MiB")
    }

    // MARK: Workers

    /// A request: a scope under a random policy, children of every kind.
    static func requestRound(_ locals: SoakLocals, _ ledger: SoakLedger) async {
        let request = locals.request
        ledger.requests.add(1, ordering: .relaxed)
        let id = ledger.nextID()
        let policy = Inheritance.all[id % 4]
        let before = request.id
        await request.withValues({
            $0.id = id
            $0.count = 0
            $0.payload = ledger.payload(id)
            $0.tracked = ledger.tracked()
        }, inheritance: policy) {
            ledger.check(request.id == id, "request \(id): the owner reads \(request.id)")
            let inherited = policy == .fresh ? -1 : id
            @Sendable func child(_ kind: String) async {
                ledger.check(request.id == inherited, "request \(id) \(policy) \(kind) child first reads \(request.id)")
                if policy == .shared {
                    request.update { $0.count += 1 }
                    await Task.yield()
                    ledger.check(request.id == id, "request \(id) shared \(kind) child reads \(request.id)")
                } else {
                    let mine = ledger.nextID()
                    request.id = mine
                    request.tracked = ledger.tracked()
                    await Task.yield()
                    ledger.check(request.id == mine,
                                 "request \(id) \(policy) \(kind) child wrote \(mine), reads \(request.id)")
                }
                // A grandchild inherits from the scope, not from the child's writes.
                let grandchild = await Task { request.id }.value
                ledger.check(grandchild == inherited || policy == .shared && grandchild == id,
                             "request \(id) \(policy) \(kind) grandchild reads \(grandchild)")
            }
            async let first: Void = child("async let")
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<3 { group.addTask { await child("group") } }
            }
            await Task { await child("Task {}") }.value
            await first
            let detached = await Task.detached { request.id }.value
            ledger.check(detached == -1, "request \(id): a detached task reads \(detached)")
            // A fire-and-forget child that outlives the scope still sees the scope's value.
            ledger.inFlight.add(1, ordering: .relaxed)
            Task {
                await Task.yield()
                ledger.check(request.id == inherited || policy == .shared,
                             "request \(id) \(policy): a child that outlived its scope reads \(request.id)")
                ledger.inFlight.subtract(1, ordering: .relaxed)
            }
            if policy == .shared {
                ledger.check(request.count == 5, "request \(id) shared: children's updates add up to \(request.count)")
            }
            ledger.check(request.id == id, "request \(id): the owner reads \(request.id) after its children")
        }
        ledger.check(request.id == before,
                     "request \(id): after the scope the owner reads \(request.id), not \(before)")
    }

    /// Short tasks outside any scope, some fire-and-forget: each sees only its own values.
    static func plainTaskRound(_ locals: SoakLocals, _ ledger: SoakLedger) async {
        @Sendable func own(_ label: String) async {
            let mine = ledger.nextID()
            ledger.check(locals.request.id == -1 && locals.overlay.id == -1,
                         "a new \(label) reads \(locals.request.id), \(locals.overlay.id)")
            locals.request.id = mine
            locals.request.payload = ledger.payload(mine)
            locals.overlay.id = mine
            locals.overlay.tracked = ledger.tracked()
            for _ in 0..<3 {
                await Task.yield()
                ledger.check(locals.request.id == mine && locals.overlay.id == mine,
                             "\(label) \(mine) reads \(locals.request.id), \(locals.overlay.id)")
            }
            if mine % 16 == 0 {
                locals.request.reset()
                ledger.check(locals.request.id == -1, "\(label) \(mine) reads \(locals.request.id) after reset")
            }
        }
        ledger.tasks.add(10, ordering: .relaxed)
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<8 { group.addTask { await own("task") } }
        }
        // A task's value discarded by another task while it is suspended: it starts over.
        let wrote = Signal()
        let discarded = Signal()
        let victim = Box<TaskID>()
        @Sendable func victimBody() async {
            let mine = ledger.nextID()
            victim.value = TaskID.current!
            locals.request.id = mine
            locals.request.tracked = ledger.tracked()
            wrote.fire()
            await discarded.wait()
            ledger.check(locals.request.id == -1, "a task whose key was discarded reads \(locals.request.id)")
            locals.request.id = mine
        }
        @Sendable func discardVictim() async {
            await wrote.wait()
            locals.request.discard(key: victim.value!)
            ledger.discardsFromElsewhere.add(1, ordering: .relaxed)
            discarded.fire()
        }
        switch ledger.nextID() % 4 {
        case 0:
            // An async let child of this long-lived worker: not pinned, bounded by the worker.
            async let child: Void = victimBody()
            await discardVictim()
            await child
        case let kind:
            await withTaskGroup(of: Void.self) { group in
                group.addTask {
                    switch kind {
                    case 1:
                        await victimBody()  // a task group child
                    case 2:
                        await Task { await victimBody() }.value
                    default:
                        async let child: Void = victimBody()  // an async let child of a short task
                        await child
                    }
                }
                await discardVictim()
            }
        }
        ledger.inFlight.add(2, ordering: .relaxed)
        Task {
            await own("fire-and-forget task")
            ledger.inFlight.subtract(1, ordering: .relaxed)
        }
        Task.detached {
            await own("detached task")
            ledger.inFlight.subtract(1, ordering: .relaxed)
        }
    }

    /// Fire-and-forget tasks that touch a Local and return 64 KiB each, their handles dropped at
    /// once. Once they have all returned, new tasks' first touches of the Local must retire all
    /// but a handful of them: the library pins a task it holds a value for until a first touch
    /// sweeps its cell, and a pinned task object keeps its result.
    static func resultRound(_ locals: SoakLocals, _ ledger: SoakLedger) async {
        let batch = 16
        let handful = 8
        ledger.resultRounds.add(1, ordering: .relaxed)
        let returned = Latch(batch)
        for _ in 0..<batch {
            Task {
                defer { returned.arrive() }
                let id = ledger.nextID()
                locals.results.id = id
                await Task.yield()
                ledger.check(locals.results.id == id, "a result task wrote \(id), reads \(locals.results.id)")
                ledger.resultsMade.add(1, ordering: .relaxed)
                let bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: id), count: SoakResult.size)
                return SoakResult(bytes: bytes, tracked: ledger.resultsReleased.make(id))
            }
        }
        await returned.wait()
        var held = ledger.resultsHeld
        ledger.mostResultsHeld.withLock { $0 = max($0, held) }
        // Sequential first touches retire ended tasks a few cells at a time. The clock only bounds
        // a failure (a task that returned a moment ago may still be finishing).
        let clock = ContinuousClock()
        let deadline = clock.now + .seconds(20)
        var touches = 0
        while held > handful, clock.now < deadline {
            await Task { locals.results.count += 1 }.value
            touches += 1
            if touches > 4 * batch { try? await Task.sleep(for: .milliseconds(1)) }
            held = ledger.resultsHeld
        }
        ledger.check(held <= handful,
                     "\(held) results of ended tasks were still held after \(touches) new tasks touched their Local")
    }

    #if compiler(>=6.2)
    /// An async scope on a `.thread` Local, started on this long-lived plain thread with
    /// `Task.immediate`: it runs here up to its first suspension, resumes on the global pool and
    /// ends there (this thread is blocked meanwhile). It restores this thread's value from
    /// elsewhere, setting the scope's value aside, since this thread may be reading it; this
    /// thread's next touch must release it.
    static func migratingScopeRound(_ locals: SoakLocals, _ ledger: SoakLedger) {
        ledger.migratedScopes.add(1, ordering: .relaxed)
        let mine = ledger.nextID()
        locals.thread.id = mine
        let ended = DispatchSemaphore(value: 0)
        immediateTask {
            await locals.thread.withValues({
                $0.id = -mine
                $0.tracked = ledger.setAside()
            }) {
                await Task.yield()
            }
            ended.signal()
        }
        ended.wait()
        let seen = locals.thread.id  // the next touch
        ledger.check(seen == mine, "a .thread scope that ended elsewhere left \(seen) for its thread, not \(mine)")
        let held = ledger.setAsideMade.load(ordering: .relaxed) - ledger.setAsideReleased.count
        ledger.check(held <= 1, "\(held) values set aside for a thread were not released at its next touch")
    }
    #endif

    /// A session: many tasks update its shared value at once; it is discarded when it ends.
    static func sessionRound(_ locals: SoakLocals, _ ledger: SoakLedger) async {
        let session = locals.session
        ledger.sessions.add(1, ordering: .relaxed)
        let key = ledger.nextID()
        await SoakSessionDiscriminator.$session.withValue(key) {
            ledger.check(session.count == 0, "session \(key) starts at \(session.count)")
            session.update {
                $0.id = key
                $0.tracked = ledger.tracked()
                $0.payload = ledger.payload(key)
            }
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<6 {
                    group.addTask {
                        for _ in 0..<20 {
                            session.update { $0.count += 1 }
                            await Task.yield()
                        }
                        ledger.check(session.id == key, "session \(key): a task reads \(session.id)")
                    }
                }
                // A plain thread with the same key shares the value too.
                group.addTask {
                    let seen = await onNewThread {
                        SoakSessionDiscriminator.$session.withValue(key) { session.id }
                    }
                    ledger.check(seen == key, "session \(key): a thread reads \(seen)")
                }
            }
            ledger.check(session.count == 120, "session \(key): updates add up to \(session.count)")
        }
        session.discard(key: key)
        let after = SoakSessionDiscriminator.$session.withValue(key) { session.id }
        ledger.check(after == -1, "session \(key): after discard reads \(after)")
        session.discard(key: key)
        session.discard(key: key + 1_000_000_000)  // never stored
    }

    /// A short-lived thread: it starts from initial values, has its values discarded from the
    /// spawning thread while it waits, and exits (which releases its values).
    static func shortLivedThread(_ locals: SoakLocals, _ ledger: SoakLedger) {
        ledger.threads.add(1, ordering: .relaxed)
        let wrote = DispatchSemaphore(value: 0)
        let discarded = DispatchSemaphore(value: 0)
        let id = Box<ThreadID>()
        let thread = Thread {
            threadRound(locals, ledger, worker: -1, fresh: true)
            id.value = ThreadID.current
            wrote.signal()
            discarded.wait()
            ledger.check(locals.thread.id == -1 && locals.request.id == -1,
                         "a thread whose key was discarded reads \(locals.thread.id), \(locals.request.id)")
            threadRound(locals, ledger, worker: -1)
        }
        thread.start()
        wrote.wait()
        locals.thread.discard(key: id.value!)
        locals.request.discard(key: id.value!)
        ledger.discardsFromElsewhere.add(2, ordering: .relaxed)
        discarded.signal()
    }

    /// One round on a plain thread: `.thread` and the `.task` fallback, a scope, a reset.
    static func threadRound(_ locals: SoakLocals, _ ledger: SoakLedger, worker: Int, fresh: Bool = false) {
        ledger.threadRounds.add(1, ordering: .relaxed)
        let mine = ledger.nextID()
        if fresh {
            ledger.check(locals.thread.id == -1 && locals.request.id == -1,
                         "a new thread reads \(locals.thread.id), \(locals.request.id)")
        }
        let before = (locals.thread.id, locals.request.id)
        locals.thread.id = mine
        locals.thread.tracked = ledger.tracked()
        locals.request.id = mine
        locals.request.payload = ledger.payload(mine)
        locals.thread.withValue(\.id, -mine) {
            locals.request.withValue(\.id, -mine) {
                ledger.check(locals.thread.id == -mine && locals.request.id == -mine,
                             "thread \(worker) scope \(mine) reads \(locals.thread.id), \(locals.request.id)")
            }
        }
        ledger.check(locals.thread.id == mine && locals.request.id == mine,
                     "thread \(worker) wrote \(mine), reads \(locals.thread.id), \(locals.request.id) (\(before))")
        if mine % 8 == 0 {
            locals.thread.reset()
            ledger.check(locals.thread.id == -1, "thread \(worker) reads \(locals.thread.id) after reset")
        }
    }
}
