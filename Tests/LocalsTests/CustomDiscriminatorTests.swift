import Foundation
import Locals
import Testing

/// Python's `hash(-1) == hash(-2)`: a session library keyed by hash alone mixed these up.
struct IntDiscriminator: Discriminator {
    @TaskLocal static var key: Int?
    var currentKey: Int? { Self.key }
}

@Suite("Custom discriminators: one value per key, compared with ==")
struct CustomDiscriminatorTests {
    @Test("a scope on a session does not bring the session back when it is discarded inside")
    func scopeDoesNotResurrectDiscardedSession() {
        let counter = DeinitCounter()
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s-42") {
            cart.id = 7
            cart.tracked = counter.make()
            cart.withValue(\.simple, "in scope") {
                cart.discard(key: "s-42")
            }
            #expect(counter.count == 1, "the discarded session's value was restored by the scope")
            #expect(cart.id == -1)
        }
    }

    @Test("each session key has its own value, shared by every task using that key")
    func perSessionValues() async {
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s-1") {
            cart.simple = "first"
            cart.list.append("book")
        }
        SessionDiscriminator.$session.withValue("s-2") {
            #expect(cart.simple == Sample.initial)
            cart.simple = "second"
        }
        // Another task with the same key sees the same value.
        let seen = await SessionDiscriminator.$session.withValue("s-1") {
            await Task { (cart.simple, cart.list) }.value
        }
        #expect(seen.0 == "first")
        #expect(seen.1 == Sample.initialList + ["book"])
        #expect(SessionDiscriminator.$session.withValue("s-2") { cart.simple } == "second")
    }

    @Test("keys with colliding hashes keep separate values")
    func collidingHashes() async {
        let local = Local(CollidingDiscriminator()) { Sample() }
        let keys = (0..<50).map(CollidingKey.init)
        #expect(Set(keys.map(\.hashValue)).count == 1)
        for key in keys {
            CollidingDiscriminator.$key.withValue(key) {
                #expect(local.id == -1, "key \(key.id) saw another key's value")
                local.id = key.id
            }
        }
        for key in keys.reversed() {
            CollidingDiscriminator.$key.withValue(key) {
                #expect(local.id == key.id)
            }
        }
    }

    @Test("keys -1 and -2 (equal hashes in CPython) keep separate values")
    func minusOneMinusTwo() {
        let local = Local(IntDiscriminator()) { Sample() }
        IntDiscriminator.$key.withValue(-1) { local.simple = "minus one" }
        IntDiscriminator.$key.withValue(-2) {
            #expect(local.simple == Sample.initial)
            local.simple = "minus two"
        }
        #expect(IntDiscriminator.$key.withValue(-1) { local.simple } == "minus one")
    }

    @Test("with a nil key, reads give initialValue() without storing it")
    func nilKeyReads() {
        let calls = CallCounter()
        let local = Local(SessionDiscriminator()) { () -> Sample in
            calls.increment()
            var value = Sample()
            value.count = calls.count
            return value
        }
        #expect(local.simple == Sample.initial)
        #expect(local.count == 2, "each read without a key runs the initializer afresh")
        #expect(calls.count == 2)
        _ = local.value
        #expect(calls.count == 3)
        local.reset()  // nothing to drop, must not trap
        // Nothing was stored: a real key starts from its own first initializer call.
        SessionDiscriminator.$session.withValue("s") {
            #expect(local.count == 4)
            #expect(local.count == 4)
        }
        #expect(calls.count == 4)
    }

    @Test("the initializer runs once per key, even when many tasks touch a new key at once")
    func initializerOncePerKey() async {
        let calls = CallCounter()
        let local = Local(SessionDiscriminator()) { calls.increment(); return Sample() }
        let tasks = 32
        let ready = Latch(tasks)
        await SessionDiscriminator.$session.withValue("shared") {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<tasks {
                    group.addTask {
                        await ready.arriveAndWait()
                        local.update { $0.count += 1 }
                    }
                }
            }
        }
        #expect(calls.count == 1)
        #expect(SessionDiscriminator.$session.withValue("shared") { local.count } == tasks)
        // Threads racing on one key too.
        let threads = 8
        let answers = Collector<Int>()
        await withTaskGroup(of: Void.self) { group in
            for _ in 0..<threads {
                group.addTask {
                    answers.append(await onNewThread {
                        SessionDiscriminator.$session.withValue("threads") { local.update { $0.count += 1; return 0 } }
                    })
                }
            }
        }
        #expect(answers.values.count == threads)
        #expect(calls.count == 2)
        #expect(SessionDiscriminator.$session.withValue("threads") { local.count } == threads)
    }

    @Test("update is atomic for a session shared by many tasks")
    func atomicUpdates() async {
        let local = Local(SessionDiscriminator()) { Sample() }
        await SessionDiscriminator.$session.withValue("counter") {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<50 {
                    group.addTask {
                        for step in 0..<100 {
                            local.update { $0.count += 1 }
                            if step.isMultiple(of: 10) { await Task.yield() }
                        }
                    }
                }
            }
            #expect(local.count == 5_000)
        }
    }

    @Test("discard(key:) releases a session's value at once; the next touch re-runs the initializer")
    func discardReleases() {
        let counter = DeinitCounter()
        let calls = CallCounter()
        let local = Local(SessionDiscriminator()) { calls.increment(); return Sample() }
        SessionDiscriminator.$session.withValue("ended") {
            local.tracked = counter.make()
            local.simple = "old"
        }
        SessionDiscriminator.$session.withValue("kept") { local.simple = "kept" }
        #expect(calls.count == 2)
        local.discard(key: "never used")
        #expect(counter.count == 0)
        local.discard(key: "ended")
        #expect(counter.count == 1)
        #expect(calls.count == 2)
        SessionDiscriminator.$session.withValue("ended") {
            #expect(local.simple == Sample.initial)
            #expect(local.tracked == nil)
        }
        #expect(calls.count == 3)
        #expect(SessionDiscriminator.$session.withValue("kept") { local.simple } == "kept")
    }

    @Test("reset drops only the current session's value")
    func resetCurrentSession() {
        let counter = DeinitCounter()
        let local = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("a") {
            local.tracked = counter.make()
            local.reset()
            #expect(counter.count == 1)
            #expect(local.tracked == nil)
        }
        SessionDiscriminator.$session.withValue("b") { local.simple = "b" }
        SessionDiscriminator.$session.withValue("a") { local.reset() }
        #expect(SessionDiscriminator.$session.withValue("b") { local.simple } == "b")
    }

    @Test("a session's value is the same from tasks and from plain threads")
    func sameKeyAcrossThreads() async {
        let local = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s") { local.simple = "from task" }
        let seen = await onNewThread {
            SessionDiscriminator.$session.withValue("s") { local.simple }
        }
        #expect(seen == "from task")
    }

    /// The CPU time the calling thread has used, in seconds.
    static func threadCPUTime() -> Double {
        var time = timespec()
        clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
        return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
    }

    @Test("contexts that wait for a session's initializer sleep until it is ready")
    func waitersSleep() async {
        // The initializer takes 300 ms; two threads touch the same session meanwhile. A waiter
        // that spins uses about as much CPU as it waits; one that sleeps almost none.
        let started = DispatchSemaphore(value: 0)
        let local = Local(SessionDiscriminator()) { () -> Sample in
            started.signal()
            usleep(300_000)
            var value = Sample()
            value.simple = "loaded"
            return value
        }
        // The loader on a plain thread: waiting here for a task to start could wait for as long
        // as other tests keep the pool's threads busy.
        let loaded = Protected<String?>(nil)
        let loaderDone = DispatchSemaphore(value: 0)
        Thread.detachNewThread {
            let value = SessionDiscriminator.$session.withValue("cart") { local.simple }
            loaded.withLock { $0 = value }
            loaderDone.signal()
        }
        started.wait()
        // The waiters on plain threads too, started now: each notes whether the value was still
        // loading when it began, so that the check below cannot pass for waiters that came late.
        let waiters = Protected<[(seen: String, cpu: Double, duringLoad: Bool)]>([])
        let waitersDone = DispatchSemaphore(value: 0)
        for _ in 0..<2 {
            Thread.detachNewThread {
                let duringLoad = loaded.withLock { $0 == nil }
                let before = Self.threadCPUTime()
                let seen = SessionDiscriminator.$session.withValue("cart") { local.simple }
                let cpu = Self.threadCPUTime() - before
                waiters.withLock { $0.append((seen, cpu, duringLoad)) }
                waitersDone.signal()
            }
        }
        await onNewThread {
            waitersDone.wait()
            waitersDone.wait()
            loaderDone.wait()
        }
        #expect(loaded.withLock { $0 } == "loaded")
        #expect(waiters.withLock { $0.count } == 2)
        for (seen, cpu, duringLoad) in waiters.withLock({ $0 }) {
            #expect(duringLoad)
            #expect(seen == "loaded")
            #expect(cpu < 0.1, "a waiter used \(cpu) s of CPU while the initializer ran for 0.3 s")
        }
    }

    #if compiler(>=6.2)
    @Test("an initializer that waits for a thread touching the same session deadlocks asleep, as any lock cycle")
    func initializerCycleSleeps() async {
        await #expect(processExitsWith: .success) {
            // The program hangs by design; a watchdog ends it after a second, successfully only
            // if the hung threads used (almost) no CPU meanwhile.
            Thread.detachNewThread {
                sleep(1)
                var time = timespec()
                clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
                let cpu = Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
                exit(cpu < 0.5 ? 0 : 1)
            }
            let holder = Box<Local<Sample>>()
            let local = Local(SessionDiscriminator()) { () -> Sample in
                let helper = DispatchSemaphore(value: 0)
                Thread.detachNewThread {
                    _ = SessionDiscriminator.$session.withValue("cart") { holder.value!.simple }
                    helper.signal()
                }
                helper.wait()
                return Sample()
            }
            holder.value = local
            _ = SessionDiscriminator.$session.withValue("cart") { local.simple }
        }
    }
    #endif

    @Test("hasCurrentKey: always for .task and .thread; for a custom discriminator, where it has a key or a run makes a session current")
    func hasCurrentKey() {
        #expect(Local { 0 }.hasCurrentKey)
        #expect(Local(.thread) { 0 }.hasCurrentKey)
        let cart = Local(SessionDiscriminator()) { Sample() }
        #expect(!cart.hasCurrentKey)
        let snapshot = SessionDiscriminator.$session.withValue("has-key") { () -> LocalsSnapshot in
            #expect(cart.hasCurrentKey)
            cart.simple = "touched"
            return LocalsSnapshot.capture()
        }
        #expect(snapshot.run { cart.hasCurrentKey })
        #expect(!cart.hasCurrentKey)
    }
}

/// A discriminator that wraps `.task` and says so: its Locals keep the task storage.
private struct ForwardingTaskDiscriminator: Discriminator {
    static let calls = CallCounter()
    let inner = TaskDiscriminator()
    var currentKey: TaskDiscriminator.Key? {
        Self.calls.increment()
        return inner.currentKey
    }
    var valueStorage: ValueStorage { inner.valueStorage }
}

/// The same wrapper without forwarding `valueStorage`: one value per key it returns.
private struct KeyedTaskDiscriminator: Discriminator {
    let inner = TaskDiscriminator()
    var currentKey: TaskDiscriminator.Key? { inner.currentKey }
}

@Suite("Value storage: a Local keeps its values where its discriminator declares")
struct ValueStorageTests {
    @Test("the built-in discriminators declare task and thread storage; custom ones default to one value per key")
    func declared() {
        #expect(TaskDiscriminator().valueStorage == .perTask)
        #expect(ThreadDiscriminator().valueStorage == .perThread)
        #expect(SessionDiscriminator().valueStorage == .perKey)
        #expect(ForwardingTaskDiscriminator().valueStorage == .perTask)
        #expect(KeyedTaskDiscriminator().valueStorage == .perKey)
        #expect("\(ValueStorage.perTask) \(ValueStorage.perThread) \(ValueStorage.perKey)" == ".perTask .perThread .perKey")
    }

    @Test("a wrapper that forwards .perTask gets task storage: children inherit scopes, values go with their task")
    func forwardedTaskStorage() async {
        let local = Local(ForwardingTaskDiscriminator()) { Sample() }
        let before = ForwardingTaskDiscriminator.calls.count
        // Scopes publish to children, which only the task storage does.
        let seen = await local.withValue(\.simple, "scoped") {
            await Task { local.simple }.value
        }
        #expect(seen == "scoped")
        // The values of ended tasks are released without any discard (where the runtime gives
        // pins; the fallback releases on address reuse, which its own tests check).
        if pinsTasks {
            let counter = DeinitCounter()
            for _ in 0..<200 {
                await Task { local.tracked = counter.make() }.value
            }
            #expect(await counter.wait(untilAtLeast: 150), "released \(counter.count) of 200")
        }
        // The task storage asks the runtime, not currentKey.
        #expect(ForwardingTaskDiscriminator.calls.count == before)
    }

    @Test("a wrapper that does not forward keeps one value per key it returns, until discarded")
    func keyedStorageKeepsValues() async {
        let local = Local(KeyedTaskDiscriminator()) { Sample() }
        let counter = DeinitCounter()
        var keys: [TaskDiscriminator.Key] = []
        for _ in 0..<20 {
            keys.append(await Task { local.tracked = counter.make(); return TaskDiscriminator().currentKey! }.value)
        }
        let seen = await local.withValue(\.simple, "scoped") { await Task { local.simple }.value }
        #expect(seen == Sample.initial)  // no inheritance through per-key storage
        #expect(counter.count == 0)
        for key in keys { local.discard(key: key) }
        #expect(counter.count == 20)
    }
}
