// Guards for the runtime facts listed at the top of Sources/Locals/TaskIdentity.swift: the one
// place swift-locals reads Swift runtime internals. If a future runtime changes any of them, these
// tests must fail loudly (and the library must not ship on that runtime until it is adapted).

@testable import Locals
import Synchronization
import Testing

/// Hands a `TaskPin` (a non-Sendable reference) out of the task that made it.
final class PinBox: @unchecked Sendable {
    // @unchecked: written once by the pinned task before a signal, read after it.
    var pin: TaskPin?
}

/// The raw job flags of the running task, read the way `TaskIdentity` does.
func currentJobFlags() -> UInt32? {
    withUnsafeCurrentTask { task in
        guard let task else { return nil }
        let header = unsafeBitCast(task, to: UnsafeRawPointer.self)
        return header.load(fromByteOffset: TaskIdentity.flagsOffset, as: UInt32.self)
    }
}

/// What a task reports about itself.
struct Report: Sendable, Equatable {
    let address: UInt
    let serial: UInt32
    let isAsyncLet: Bool
    let flags: UInt32
    let pinned: Bool

    static func current() -> Report {
        let identity = TaskIdentity.current!
        return Report(
            address: identity.address,
            serial: identity.serial,
            isAsyncLet: identity.isAsyncLet,
            flags: currentJobFlags()!,
            pinned: TaskIdentity.pinCurrent() != nil
        )
    }
}

@Suite("TaskIdentity: the runtime facts swift-locals relies on")
struct TaskIdentityTests {
    // MARK: Fact 1: address plus serial

    @Test("the identity is the task's address: the one UnsafeCurrentTask holds")
    func addressIsTheTask() async {
        let (identity, address) = await Task {
            (TaskIdentity.current!, withUnsafeCurrentTask { UInt(bitPattern: unsafeBitCast($0!, to: UnsafeRawPointer.self)) })
        }.value
        #expect(identity.address == address)
        #expect(TaskIdentity.current != nil)
        #expect(await onNewThread { TaskIdentity.current == nil }, "no identity outside any task")
    }

    @Test("the job flags mark a task (job kind 0) for every kind of task")
    func jobKindIsTask() async {
        var flags: [UInt32] = [currentJobFlags()!]
        flags.append(await Task { currentJobFlags()! }.value)
        flags.append(await Task.detached { currentJobFlags()! }.value)
        for kind in ChildKind.allCases {
            flags.append(await inChild(kind) { currentJobFlags()! })
        }
        for flag in flags {
            #expect(flag & TaskIdentity.jobKindMask == 0, "flags 0x\(String(flag, radix: 16))")
        }
    }

    @Test(
        "sequential tasks that share an address have different serials",
        .disabled(if: runningUnderAddressSanitizer, "Address Sanitizer quarantines freed memory: no address is reused")
    )
    func serialDiffersAtSameAddress() async throws {
        var reports: [Report] = []
        for _ in 0..<2_000 {
            reports.append(await Task { Report.current() }.value)
            reports.append(await Task.detached { Report.current() }.value)
        }
        let byAddress = Dictionary(grouping: reports, by: \.address)
        let reused = byAddress.values.filter { $0.count > 1 }
        try #require(!reused.isEmpty, "no address was reused: this test cannot check anything")
        #expect(byAddress.count < reports.count / 10, "Swift reuses task addresses at once (FACTS.md)")
        let shared = reused.filter { Set($0.map(\.serial)).count != $0.count }
        #expect(shared.count == 0, "at \(shared.count) of \(reused.count) reused addresses, tasks shared a serial")
    }

    @Test("serials grow with each task created, and are never zero")
    func serialsGrow() async {
        var serials: [UInt32] = []
        for _ in 0..<500 {
            serials.append(await Task { TaskIdentity.current!.serial }.value)
        }
        #expect(!serials.contains(0))
        #expect(zip(serials, serials.dropFirst()).allSatisfy { $0 < $1 }, "serials are not increasing")
    }

    @Test("a task's identity is stable across suspension points; tasks alive together differ")
    func identityStable() async {
        let tasks = 32
        let alive = Latch(tasks)
        let identities = await withTaskGroup(of: TaskIdentity?.self) { group in
            for _ in 0..<tasks {
                group.addTask {
                    let before = TaskIdentity.current!
                    await alive.arriveAndWait()
                    for _ in 0..<50 {
                        await Task.yield()
                        if TaskIdentity.current != before { return nil }
                    }
                    return before
                }
            }
            return await group.reduce(into: [TaskIdentity?]()) { $0.append($1) }
        }
        #expect(!identities.contains(nil), "an identity changed across an await")
        #expect(Set(identities.compactMap { $0?.address }).count == tasks)
        #expect(Set(identities.compactMap { $0?.serial }).count == tasks)
    }

    // MARK: Fact 2: the async-let flag

    @Test("the async-let flag is set for async let children only")
    func asyncLetFlag() async {
        #expect(Report.current().isAsyncLet == false, "the test's own task")
        #expect(await Task { Report.current() }.value.isAsyncLet == false, "Task {}")
        #expect(await Task.immediate { Report.current() }.value.isAsyncLet == false, "Task.immediate")
        #expect(await Task.detached { Report.current() }.value.isAsyncLet == false, "Task.detached")
        for kind in ChildKind.allCases {
            let report = await inChild(kind) { Report.current() }
            #expect(report.isAsyncLet == (kind == .asyncLet), "\(kind.rawValue)")
            #expect((report.flags & TaskIdentity.asyncLetFlag != 0) == (kind == .asyncLet))
        }
        // Nested: an async let inside an async let, and a Task {} made by an async let child.
        async let outer = { () async -> (Report, Report, Report) in
            async let inner = Report.current()
            let heap = await Task { Report.current() }.value
            return (Report.current(), await inner, heap)
        }()
        let (outerReport, innerReport, heapReport) = await outer
        #expect(outerReport.isAsyncLet)
        #expect(innerReport.isAsyncLet)
        #expect(!heapReport.isAsyncLet)
    }

    @Test("async let children are never pinned; every other task is")
    func pinnedKinds() async {
        #expect(Report.current().pinned)
        #expect(await Task.detached { Report.current() }.value.pinned)
        for kind in ChildKind.allCases {
            let report = await inChild(kind) { Report.current() }
            #expect(report.pinned == (kind != .asyncLet), "\(kind.rawValue)")
        }
        #expect(await onNewThread { TaskIdentity.pinCurrent() == nil })
    }

    // MARK: Fact 4: a child task's parent pointer

    /// The word right after the running task's `AsyncTask` object: its parent, for a child task.
    static func parentWordOfCurrent(_ offset: Int) -> UInt {
        let me = TaskIdentity.current!
        return UnsafeRawPointer(bitPattern: me.address)!.load(fromByteOffset: offset, as: UInt.self)
    }

    @Test("a child task's parent pointer is the first word after its AsyncTask object")
    func childParentPointer() async {
        guard let offset = TaskIdentity.parentOffset else {
            // Not relied on where the layout is unverified (async let values then fall back to
            // address-reuse reclaim), so there is nothing to guard.
            return
        }
        let parent = TaskIdentity.current!.address
        async let viaAsyncLet = Self.parentWordOfCurrent(offset)
        #expect(await viaAsyncLet == parent, "async let child")
        let viaGroup = await withTaskGroup(of: UInt.self) { group in
            group.addTask { Self.parentWordOfCurrent(offset) }
            return await group.next()!
        }
        #expect(viaGroup == parent, "task group child")
        let viaDiscarding = await inChild(.discardingTaskGroup) { Self.parentWordOfCurrent(offset) }
        #expect(viaDiscarding == parent, "discarding task group child")
        async let nested = { () async -> (UInt, UInt) in
            let outer = TaskIdentity.current!.address
            async let inner = Self.parentWordOfCurrent(offset)
            return (outer, await inner)
        }()
        let (outer, inner) = await nested
        #expect(inner == outer, "an async let inside an async let points to the outer child")
    }

    @Test("an async let child's nearest heap ancestor is the enclosing heap task, however deep")
    func heapAncestorOfAsyncLet() async {
        guard TaskIdentity.parentOffset != nil else { return }  // see childParentPointer
        let (heap, found) = await Task { () -> (TaskIdentity, [TaskIdentity?]) in
            let heap = TaskIdentity.current!
            async let direct = TaskIdentity.heapAncestorOfCurrentAsyncLet()
            async let deeper = { () async -> TaskIdentity? in
                async let deepest = TaskIdentity.heapAncestorOfCurrentAsyncLet()
                return await deepest
            }()
            return (heap, [await direct, await deeper])
        }.value
        #expect(found == [heap, heap])
        // Inside a group child (a heap task), the group child is the ancestor.
        let (groupChild, ancestor) = await inChild(.taskGroup) { () -> (TaskIdentity, TaskIdentity?) in
            async let ancestor = TaskIdentity.heapAncestorOfCurrentAsyncLet()
            return (TaskIdentity.current!, await ancestor)
        }
        #expect(ancestor == groupChild)
        // Not an async let child: no ancestor is looked for.
        #expect(TaskIdentity.heapAncestorOfCurrentAsyncLet() == nil)
        #expect(await Task { TaskIdentity.heapAncestorOfCurrentAsyncLet() }.value == nil)
    }

    // MARK: Fact 3: pins and unique references

    @Test("a pinned heap task is not uniquely referenced while it runs, and is once it ended and its handle is gone",
          arguments: ["Task {}", "Task.detached", "DiscardingTaskGroup child"])
    func pinUniqueness(kind: String) async {
        let box = PinBox()
        let pinned = Signal()
        let finish = Signal()
        let runningChecked = Signal()
        let runningUnique = Atomic<Bool>(true)
        let body: @Sendable () async -> Void = {
            box.pin = TaskIdentity.pinCurrent()
            // From inside: the running task retains itself.
            if var pin = box.pin {
                runningUnique.store(TaskPin.taskHasEnded(&pin), ordering: .sequentiallyConsistent)
                box.pin = pin
            }
            pinned.fire()
            await runningChecked.wait()
            await finish.wait()
        }
        var handle: Task<Void, Never>?
        var group: Task<Void, Never>?
        switch kind {
        case "Task {}": handle = Task { await body() }
        case "Task.detached": handle = Task.detached { await body() }
        default:
            group = Task {
                await withDiscardingTaskGroup { group in group.addTask { await body() } }
            }
        }
        await pinned.wait()
        #expect(runningUnique.load(ordering: .sequentiallyConsistent) == false, "a running task is uniquely referenced by a pin")
        #expect(box.pin != nil)
        // From outside, while it is suspended.
        #expect(TaskPin.taskHasEnded(&box.pin!) == false)
        runningChecked.fire()
        finish.fire()
        if let task = handle {
            await task.value
            // Ended, but the handle still refers to it.
            #expect(TaskPin.taskHasEnded(&box.pin!) == false, "the handle's reference was not seen")
        }
        await group?.value
        handle = nil
        group = nil
        let ended = await eventually { TaskPin.taskHasEnded(&box.pin!) }
        #expect(ended, "an ended task with no handle left never became uniquely referenced by its pin")
    }

    @Test("a pin keeps the task's address from being reused")
    func pinKeepsAddress() async {
        let box = PinBox()
        let address = await Task { () -> UInt in
            box.pin = TaskIdentity.pinCurrent()
            return TaskIdentity.current!.address
        }.value
        #expect(await eventually { TaskPin.taskHasEnded(&box.pin!) })
        var reused = 0
        for _ in 0..<500 {
            let next = await Task { TaskIdentity.current!.address }.value
            if next == address { reused += 1 }
        }
        #expect(reused == 0)
    }
}
