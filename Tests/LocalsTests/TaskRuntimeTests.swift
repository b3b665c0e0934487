// Guards for what `TaskRuntime` confirms about the Swift runtime at first use (the one place
// swift-locals relies on runtime behavior the language does not promise), and for each fallback
// it takes where a check fails. If a future runtime changes a fact, the first-use check reports
// it and these tests fail loudly.

import Foundation
@testable import Locals
import Synchronization
import Testing
import _LocalsRuntime

/// Hands a `TaskPin` (a non-Sendable reference) out of the task that made it.
final class PinBox: @unchecked Sendable {
    // @unchecked: written once by the pinned task before a signal, read after it.
    var pin: TaskPin?
}

/// What a task reports about itself, by asking the runtime the way `TaskRuntime` does.
struct Report: Sendable, Equatable {
    let address: UInt
    let id: UInt64
    let isAsyncLet: Bool
    let flags: UInt32
    let pinned: Bool

    static func current() -> Report {
        let identity = TaskIdentity.current!
        let header = UnsafeRawPointer(bitPattern: identity.address)!
        let pinned: Bool
        switch TaskRuntime.lifetimeOfCurrentTask(identity) {
        case .pinned: pinned = true
        case .ancestor, .unpinned: pinned = false
        }
        return Report(
            address: identity.address,
            id: identity.id,
            isAsyncLet: TaskRuntime.isAsyncLet(header),
            flags: locals_runtime_job_flags(header),
            pinned: pinned
        )
    }
}

/// The checks this test process was told to fail (the CI runs the suite once per fallback).
let forcedFallbacks = TaskRuntime.forcedByEnvironment()

@Suite("TaskRuntime: what swift-locals confirms about the runtime at first use")
struct TaskRuntimeTests {
    // MARK: The first-use report

    @Test("the first use confirms every fact on this runtime, and says what it found")
    func firstUseConfirms() async {
        let support = TaskDiscriminator.support
        print(support)
        #expect(support.runtime.contains("layout version"))
        #expect(support.runtime.contains("task objects of \(locals_runtime_async_task_size()) bytes"))
        #expect(support.taskIdentity == .confirmed)
        if forcedFallbacks.isEmpty {
            #expect(support.isComplete)
            #expect(support.taskEnd == .confirmed)
            #expect(support.asyncLetParent == .confirmed)
            #expect(TaskRuntime.facts.parentOffset == locals_runtime_async_task_size())
        } else {
            #expect(!support.isComplete)
            #expect(support.taskEnd.isConfirmed == !forcedFallbacks.contains(.taskEnd))
            #expect(support.asyncLetParent.isConfirmed == false)
            #expect(TaskRuntime.facts.parentOffset == nil)
        }
    }

    #if compiler(>=6.2)
    @Test("each forced check reports its failure, prints one line naming it and the runtime, and keeps tasks apart",
          arguments: [TaskRuntime.Fact.taskEnd, .asyncLetParent])
    func forcedFallbackIsReported(fact: TaskRuntime.Fact) async {
        let result: ExitTest.Result?
        switch fact {
        case .taskEnd:
            result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
                TaskRuntime.forceFailing([.taskEnd])
                try await checkForcedFallback(.taskEnd)
            }
        default:
            result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
                TaskRuntime.forceFailing([.asyncLetParent])
                try await checkForcedFallback(.asyncLetParent)
            }
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        let lines = stderr.split(separator: "\n").filter { $0.hasPrefix("swift-locals:") }
        // The parent pointer needs task end detection; the CI may force more checks to fail.
        let forced = forcedFallbacks.union([fact])
        let expected = forced.union(forced.contains(.taskEnd) ? [.asyncLetParent] : []).count
        #expect(lines.count == expected, "\(stderr)")
        #expect(lines.contains { $0.contains(fact.rawValue) && $0.contains("layout version") })
    }

    @Test("where task ids cannot be confirmed, a .task Local stops at its first use in a task, naming the runtime")
    func identityFailureStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            TaskRuntime.forceFailing([.taskIdentity])
            let local = Local { 0 }
            _ = await Task { local.value }.value
        }
        let stderr = String(decoding: result?.standardErrorContent ?? [], as: UTF8.self)
        #expect(stderr.contains("cannot tell tasks apart"))
        #expect(stderr.contains("layout version"))
    }

    @Test("a .thread Local and the .task fallback outside tasks still work where task ids fail")
    func identityFailureLeavesThreads() async {
        await #expect(processExitsWith: .success) {
            TaskRuntime.forceFailing([.taskIdentity])
            let perThread = Local(.thread) { 0 }
            let outsideTasks = Local { 0 }
            // Plain threads only: a task may move to another thread at an await.
            let seen = await onNewThread { () -> [Int] in
                perThread.value = 7
                outsideTasks.value = 3
                let other = onNewThreadBlocking { [perThread.value, outsideTasks.value] } ?? []
                return [perThread.value, outsideTasks.value] + other
            }
            guard seen == [7, 3, 0, 0], !TaskDiscriminator.support.taskIdentity.isConfirmed else {
                throw ForcedFallbackFailure(description: "thread values were mixed up: \(seen)")
            }
        }
    }

    @Test(
        "tasks whose ids share the low 32 bits never share a value, even at a reused address",
        .disabled(if: runningUnderAddressSanitizer, "Address Sanitizer quarantines freed memory: no address is reused")
    )
    func foldedIDsStayApart() async {
        await #expect(processExitsWith: .success) {
            // Every id is folded to `(id << 32) | constant`, and nothing is pinned, so that
            // sequential tasks reuse addresses while their ids differ only above bit 32.
            locals_runtime_testing_start_folding_task_ids()
            TaskRuntime.forceFailing([.taskEnd])
            let local = Local { -1 }
            var addresses: [UInt: Int] = [:]
            for index in 0..<2_000 {
                let (seen, address) = await Task { () -> (Int, UInt) in
                    let seen = local.value
                    local.value = index
                    return (seen, TaskIdentity.current!.address)
                }.value
                guard seen == -1 else {
                    throw ForcedFallbackFailure(description: "task \(index) saw \(seen), another task's value")
                }
                addresses[address, default: 0] += 1
                guard TaskIdentity.current!.id & 0xFFFF_FFFF == 0x5EED else {
                    throw ForcedFallbackFailure(description: "ids were not folded")
                }
            }
            guard addresses.values.contains(where: { $0 > 1 }) else {
                throw ForcedFallbackFailure(description: "no address was reused: the test checked nothing")
            }
        }
    }
    #endif

    // MARK: Identity

    @Test("the identity is the task's address with the runtime's 64-bit id")
    func addressIsTheTask() async {
        let (identity, address) = await Task {
            let address = withUnsafeCurrentTask { UInt(bitPattern: unsafeBitCast($0!, to: UnsafeRawPointer.self)) }
            return (TaskIdentity.current!, address)
        }.value
        #expect(identity.address == address)
        #expect(identity.id != 0)
        #expect(await onNewThread { TaskIdentity.current == nil }, "no identity outside any task")
        #expect(await onNewThread { TaskID.current == nil })
    }

    @Test("TaskID values taken from 100,000 sequential tasks are all distinct")
    func taskIDsNeverRepeat() async {
        var ids = Set<TaskID>()
        var addresses = Set<UInt>()
        let count = 100_000
        for _ in 0..<count {
            let id = await Task { TaskID.current! }.value
            ids.insert(id)
            addresses.insert(id.address)
        }
        #expect(ids.count == count)
        if !runningUnderAddressSanitizer {
            #expect(addresses.count < count / 10, "Swift reuses task addresses at once, and ids still differ")
        }
    }

    @Test(
        "sequential tasks that share an address have different ids",
        .disabled(if: runningUnderAddressSanitizer, "Address Sanitizer quarantines freed memory: no address is reused")
    )
    func idDiffersAtSameAddress() async throws {
        var reports: [Report] = []
        for _ in 0..<2_000 {
            reports.append(await Task { Report.current() }.value)
            reports.append(await Task.detached { Report.current() }.value)
        }
        let byAddress = Dictionary(grouping: reports, by: \.address)
        let reused = byAddress.values.filter { $0.count > 1 }
        try #require(!reused.isEmpty, "no address was reused: this test cannot check anything")
        let shared = reused.filter { Set($0.map(\.id)).count != $0.count }
        #expect(shared.count == 0, "at \(shared.count) of \(reused.count) reused addresses, tasks shared an id")
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
        #expect(Set(identities.compactMap { $0?.id }).count == tasks)
    }

    // MARK: Task kinds and pins

    @Test("the job flags mark a task (job kind 0) for every kind of task")
    func jobKindIsTask() async {
        var flags: [UInt32] = [Report.current().flags]
        flags.append(await Task { Report.current().flags }.value)
        flags.append(await Task.detached { Report.current().flags }.value)
        for kind in ChildKind.allCases {
            flags.append(await inChild(kind) { Report.current().flags })
        }
        for flag in flags {
            #expect(flag & TaskRuntime.jobKindMask == 0, "flags 0x\(String(flag, radix: 16))")
        }
    }

    @Test("the async-let flag is set for async let children only")
    func asyncLetFlag() async {
        #expect(Report.current().isAsyncLet == false, "the test's own task")
        #expect(await Task { Report.current() }.value.isAsyncLet == false, "Task {}")
        #if compiler(>=6.2)
        if immediateTasksAvailable {
            #expect(await immediateTask { Report.current() }.value.isAsyncLet == false, "Task.immediate")
        }
        #endif
        #expect(await Task.detached { Report.current() }.value.isAsyncLet == false, "Task.detached")
        for kind in ChildKind.allCases {
            let report = await inChild(kind) { Report.current() }
            #expect(report.isAsyncLet == (kind == .asyncLet), "\(kind.rawValue)")
        }
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

    @Test("async let children are never pinned; every other task is, where task end detection holds")
    func pinnedKinds() async {
        let pins = !forcedFallbacks.contains(.taskEnd)
        #expect(Report.current().pinned == pins)
        #expect(await Task.detached { Report.current() }.value.pinned == pins)
        for kind in ChildKind.allCases {
            let report = await inChild(kind) { Report.current() }
            #expect(report.pinned == (pins && kind != .asyncLet), "\(kind.rawValue)")
        }
    }

    @Test("a pinned heap task is not uniquely referenced while it runs, and is once it ended and its handle is gone",
          arguments: ["Task {}", "Task.detached", "DiscardingTaskGroup child"])
    func pinUniqueness(kind: String) async {
        let box = PinBox()
        let pinned = Signal()
        let finish = Signal()
        let runningChecked = Signal()
        let runningUnique = Atomic<Bool>(true)
        let body: @Sendable () async -> Void = {
            var pin = withUnsafeCurrentTask { unsafeBitCast($0!, to: TaskPin.self) }
            // From inside: the running task retains itself.
            runningUnique.store(TaskPin.taskHasEnded(&pin), ordering: .sequentiallyConsistent)
            box.pin = pin
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
        #expect(runningUnique.load(ordering: .sequentiallyConsistent) == false,
                "a running task is uniquely referenced by a pin")
        #expect(TaskPin.taskHasEnded(&box.pin!) == false)
        runningChecked.fire()
        finish.fire()
        if let task = handle {
            await task.value
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
            box.pin = withUnsafeCurrentTask { unsafeBitCast($0!, to: TaskPin.self) }
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

    // MARK: The parent pointer

    /// The word at the confirmed parent-pointer offset of the running task.
    static func parentWordOfCurrent(_ offset: Int) -> UInt {
        let me = TaskIdentity.current!
        return UnsafeRawPointer(bitPattern: me.address)!.load(fromByteOffset: offset, as: UInt.self)
    }

    @Test("a child task's parent pointer is the first word after the runtime's published task size")
    func childParentPointer() async throws {
        // Read at the size the runtime publishes, whatever the library concluded, so that a
        // runtime that moved the pointer fails here even where the first-use check fell back.
        let offset = locals_runtime_async_task_size()
        try #require(offset > 0, "the runtime publishes no task size")
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

    @Test("an async let child's lifetime is its nearest heap ancestor's, however deep")
    func heapAncestorOfAsyncLet() async {
        @Sendable func ancestor() -> TaskIdentity? {
            if case .ancestor(let ancestor, _) = TaskRuntime.lifetimeOfCurrentTask(TaskIdentity.current!) {
                return ancestor
            }
            return nil
        }
        let confirmed = TaskDiscriminator.support.asyncLetParent.isConfirmed
        let (heap, found) = await Task { () -> (TaskIdentity, [TaskIdentity?]) in
            let heap = TaskIdentity.current!
            async let direct = ancestor()
            async let deeper = { () async -> TaskIdentity? in
                async let deepest = ancestor()
                return await deepest
            }()
            return (heap, [await direct, await deeper])
        }.value
        #expect(found == (confirmed ? [heap, heap] : [nil, nil]))
        let (groupChild, found2) = await inChild(.taskGroup) { () -> (TaskIdentity, TaskIdentity?) in
            async let ancestor = ancestor()
            return (TaskIdentity.current!, await ancestor)
        }
        #expect(found2 == (confirmed ? groupChild : nil))
        #expect(ancestor() == nil, "not an async let child")
    }
}

/// A failure inside an exit test, reported through its exit status and standard error.
struct ForcedFallbackFailure: Error, CustomStringConvertible {
    var description: String
}

/// Checks, in a process where `fact` was forced to fail before first use, that the library says so
/// and still keeps every kind of task's values apart and restores scopes.
func checkForcedFallback(_ fact: TaskRuntime.Fact) async throws {
    let local = Local { "initial" }
    // The first use runs the checks.
    let first = await Task { local.value }.value
    let support = TaskDiscriminator.support
    let check = fact == .taskEnd ? support.taskEnd : support.asyncLetParent
    guard first == "initial", check == .failed(reason: "forced to fail for a test"),
        support.taskIdentity.isConfirmed
    else {
        throw ForcedFallbackFailure(description: "support does not report the forced failure: \(support)")
    }
    if fact == .taskEnd, support.asyncLetParent.isConfirmed {
        throw ForcedFallbackFailure(description: "the parent pointer cannot be confirmed without task end")
    }
    for index in 0..<200 {
        let seen = await Task { () -> String in
            let seen = local.value
            local.value = "task \(index)"
            return seen
        }.value
        guard seen == "initial" else {
            throw ForcedFallbackFailure(description: "a sequential task saw \(seen)")
        }
    }
    let seen = await local.withValue(\.self, "scope") { () -> [String] in
        var seen: [String] = []
        for kind in ChildKind.allCases {
            seen.append(await inChild(kind) { () -> String in
                let first = local.value
                local.value = "\(kind)"
                return first + "/" + local.value
            })
        }
        seen.append(local.value)
        return seen
    }
    let expected = ChildKind.allCases.map { "scope/\($0)" } + ["scope"]
    guard seen == expected, local.value == "initial" else {
        throw ForcedFallbackFailure(description: "children saw \(seen), the owner \(local.value) after the scope")
    }
}
