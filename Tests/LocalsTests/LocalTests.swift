import Dispatch
import Locals
import Testing

@Suite("Local: property syntax, value, update, reset and the per-key initializer")
struct LocalTests {
    @Test("attributes read and write with plain property syntax")
    func propertySyntax() {
        let local = Local { Sample() }
        #expect(local.simple == Sample.initial)
        local.simple = "written"
        local.count += 2
        local.list.append("more")
        #expect(local.simple == "written")
        #expect(local.count == 2)
        #expect(local.list == Sample.initialList + ["more"])
    }

    @Test("value reads and replaces the current key's whole value")
    func wholeValue() {
        let local = Local { Sample() }
        var replacement = Sample()
        replacement.simple = "whole"
        replacement.id = 7
        local.value = replacement
        let read: Sample = local.value
        #expect(read.simple == "whole")
        #expect(read.id == 7)
        #expect(local.simple == "whole")
    }

    @Test("update changes the value in one step and returns the closure's result")
    func updateReturnsResult() {
        let local = Local { Sample() }
        let result = local.update { value -> Int in
            value.count += 5
            value.simple = "updated"
            return value.count * 2
        }
        #expect(result == 10)
        #expect(local.count == 5)
        #expect(local.simple == "updated")
    }

    @Test("update rethrows the closure's error and keeps changes made before the throw")
    func updateRethrows() {
        struct Boom: Error, Equatable {}
        let local = Local { Sample() }
        #expect(throws: Boom()) {
            try local.update { value throws(Boom) in
                value.count = 1
                throw Boom()
            }
        }
        #expect(local.count == 1)
    }

    @Test("the initializer runs lazily, once per task, and a read counts as a touch")
    func initializerOncePerTask() async {
        let calls = CallCounter()
        let local = Local { calls.increment(); return Sample() }
        #expect(calls.count == 0)
        let tasks = 24
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<tasks {
                group.addTask {
                    if i.isMultiple(of: 2) {
                        _ = local.simple  // a read is a touch
                    } else {
                        local.id = i
                    }
                    _ = local.count
                    local.count += 1
                    _ = local.value
                }
            }
        }
        #expect(calls.count == tasks)
    }

    @Test("tasks that never touch the Local do not run the initializer")
    func untouchedTasksAddNothing() async {
        let calls = CallCounter()
        let local = Local { calls.increment(); return Sample() }
        await withTaskGroup(of: Void.self) { group in
            for i in 0..<40 {
                group.addTask {
                    if i < 10 { _ = local.simple }
                }
            }
        }
        #expect(calls.count == 10)
    }

    @Test("reset drops the value and the next touch runs the initializer again")
    func resetRerunsInitializer() async {
        let calls = CallCounter()
        let local = Local { calls.increment(); return Sample() }
        await Task {
            local.simple = "changed"
            #expect(calls.count == 1)
            local.reset()
            #expect(calls.count == 1, "reset alone must not run the initializer")
            #expect(local.simple == Sample.initial)
            #expect(calls.count == 2)
            local.reset()
            local.id = 3  // a write is a touch too
            #expect(calls.count == 3)
            #expect(local.id == 3)
        }.value
    }

    @Test("reset releases the dropped value at once")
    func resetReleases() async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        await Task {
            local.tracked = counter.make()
            #expect(counter.count == 0)
            local.reset()
            #expect(counter.count == 1)
        }.value
    }

    @Test("reset in one task leaves other tasks' values alone")
    func resetIsPerKey() async {
        let local = Local { Sample() }
        let written = Latch(2)
        let resetDone = Signal()
        await withTaskGroup(of: Void.self) { group in
            group.addTask {
                local.simple = "keeper"
                await written.arriveAndWait()
                await resetDone.wait()
                #expect(local.simple == "keeper")
            }
            group.addTask {
                local.simple = "resetter"
                await written.arriveAndWait()
                local.reset()
                #expect(local.simple == Sample.initial)
                resetDone.fire()
            }
        }
    }

    @Test("an initializer that touches another Local works", arguments: [false, true])
    func initializerTouchesAnotherLocal(onThread: Bool) async {
        let base = Local { Sample() }
        let derived = Local { () -> Sample in
            var value = Sample()
            value.simple = "derived from \(base.simple)"
            base.count += 1
            return value
        }
        let check: @Sendable () -> (String, Int) = {
            base.simple = "base"
            let simple = derived.simple
            return (simple, base.count)
        }
        let (simple, count) = onThread ? await onNewThread(check) : await Task { check() }.value
        #expect(simple == "derived from base")
        #expect(count == 1)
    }

    @Test("an initializer may wait for another thread that touches the same Local (no lock held)")
    func initializerRunsOutsideLocks() async {
        let calls = CallCounter()
        let holder = Box<Local<Sample>>()
        let local = Local { () -> Sample in
            var value = Sample()
            guard calls.incremented() == 1 else { return value }
            // Another key of the same Local is touched from another thread while this key's
            // initializer runs: that would deadlock if the initializer ran under a lock.
            let other = onNewThreadBlocking(timeout: .seconds(10)) { () -> String? in
                guard let local = holder.value else { return nil }
                local.simple = "other thread"
                return local.simple
            }
            value.simple = other.flatMap { $0 } ?? "no answer from the other thread"
            return value
        }
        holder.value = local
        let result = await Task { local.simple }.value
        #expect(result == "other thread")
        #expect(calls.count == 2)
        holder.value = nil  // the Local's initializer captures `holder`: break the cycle
    }

    @Test("description names the value type, discriminator and policy")
    func description() {
        let local = Local(.thread, inheritance: .overlay) { Sample() }
        let text = String(describing: local)
        #expect(text.contains("Sample"))
        #expect(text.contains("Thread"))
        #expect(text.contains("overlay"))
    }
}
