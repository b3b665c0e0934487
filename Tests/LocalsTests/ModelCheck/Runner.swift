// Running a program against the library: what every task of a run shares, the Locals shared by
// many programs, and the one step interpreter that takes a task's or a plain thread's steps with
// real tasks, scopes and threads. Every step that needs no waiting runs in `ModelStepper`, the
// same for both; a task and a thread differ only in how they wait (suspending or blocking), so
// each runner adds just the steps that wait (LibraryCalls.swift makes the library calls).

import Foundation
import Locals

/// An error that unwinds `levels` scopes; `abort` stops a program that hung.
struct ModelUnwind: Error, Equatable {
    var levels: Int
    static let abort = ModelUnwind(levels: .max)
    var isAbort: Bool { levels == .max }
}

/// What every task of one program run shares.
final class ModelContext: Sendable {
    struct Planned: Sendable {
        var step: Int
        var action: ModelAction
    }

    let locals: [Local<ModelValue>]
    /// Counts each Local's initializer calls (for a pool's Locals, since the pool was made).
    let initializerCalls: [CallCounter]
    let plans: [Int: [Planned]]
    let expected: [[ModelPart]]
    let endedTask: TaskID
    /// A thread that has exited (a key with no storage).
    let otherThread: ThreadID
    let conductor: ModelConductor

    /// Keys no program stores anything under.
    struct UnknownKeys: Sendable {
        var endedTask: TaskID
        var exitedThread: ThreadID

        static func make() async -> UnknownKeys {
            UnknownKeys(
                endedTask: await Task { TaskID.current! }.value,
                exitedThread: await onNewThread { ThreadID.current }
            )
        }
    }
    private let observed = Protected<[Int: [ModelPart]]>([:])
    /// The snapshots the program took, by slot: taken by one task, run by any.
    private let snapshots = Protected<[Int: LocalsSnapshot]>([:])

    init(program: ModelProgram, expected: [[ModelPart]], unknown: UnknownKeys, pool: ModelLocalPool?) {
        if let pool {
            (locals, initializerCalls) = pool.locals(for: program.policies)
        } else {
            initializerCalls = program.policies.map { _ in CallCounter() }
            locals = zip(program.policies, initializerCalls).map { policy, calls in
                Local(inheritance: policy) { calls.increment(); return ModelValue() }
            }
        }
        var plans: [Int: [Planned]] = [:]
        for (index, step) in program.steps.enumerated() {
            plans[step.task, default: []].append(Planned(step: index, action: step.action))
        }
        self.plans = plans
        self.expected = expected
        endedTask = unknown.endedTask
        otherThread = unknown.exitedThread
        conductor = ModelConductor(order: program.steps.map(\.task))
    }

    func record(_ step: Int, _ parts: [ModelPart]) {
        observed.withLock { $0[step] = parts }
    }

    var observations: [Int: [ModelPart]] { observed.withLock { $0 } }

    func keep(_ snapshot: LocalsSnapshot, in slot: Int) {
        snapshots.withLock { $0[slot] = snapshot }
    }

    /// The snapshot in `slot`, or an empty one if none was taken there.
    func snapshot(in slot: Int) -> LocalsSnapshot {
        snapshots.withLock { $0[slot] } ?? LocalsSnapshot()
    }
}

/// Locals shared by many programs: each program's tasks are new, so they must see only initial
/// values at first, whatever earlier programs' tasks (ended, at reused addresses) stored. This
/// also runs the lazy sweeps of ended tasks, which a program's few tasks never reach alone.
final class ModelLocalPool: Sendable {
    private let byPolicy: [Inheritance: [(Local<ModelValue>, CallCounter)]]

    init() {
        var byPolicy: [Inheritance: [(Local<ModelValue>, CallCounter)]] = [:]
        for policy in Inheritance.all {
            byPolicy[policy] = (0..<2).map { _ in
                let calls = CallCounter()
                return (Local(inheritance: policy) { calls.increment(); return ModelValue() }, calls)
            }
        }
        self.byPolicy = byPolicy
    }

    func locals(for policies: [Inheritance]) -> ([Local<ModelValue>], [CallCounter]) {
        let chosen = policies.enumerated().map { index, policy in
            byPolicy[policy]![index > 0 && policies[0] == policy ? 1 : 0]
        }
        return (chosen.map(\.0), chosen.map(\.1))
    }
}

/// The step interpreter a task and a plain thread share: the plan of one of them, and every step
/// that runs the same in both (reads, writes, resets, discards of its own, synchronous scopes,
/// captures, synchronous runs, closing and throwing out of scopes, creating an unstructured
/// child, cancelling one). A runner handles the rest, the steps that wait for something.
class ModelStepper {
    let id: Int
    let context: ModelContext
    let plan: [ModelContext.Planned]
    var pc = 0
    var handles: [Int: Task<Void, Never>] = [:]

    init(id: Int, context: ModelContext) {
        self.id = id
        self.context = context
        plan = context.plans[id] ?? []
    }

    /// What a runner does after `performShared`.
    enum Next {
        /// The step ran: on to the next.
        case nextStep
        /// The step ended the current block (`close`, `end`).
        case endBlock
        /// A step that waits: the runner performs it.
        case waits
    }

    func advance() { context.conductor.advance() }

    /// Performs `action` if it runs the same in a task and on a plain thread; throws for
    /// `throwOut`, as the scopes it leaves expect.
    func performShared(_ action: ModelAction, step: Int) throws(ModelUnwind) -> Next {
        if Self.performSimple(action, step: step, context: context) {
            advance()
            return .nextStep
        }
        switch action {
        case .close, .end:
            advance()
            return .endBlock
        case .throwOut(let levels):
            advance()
            throw ModelUnwind(levels: levels)
        case .cancel(let child):
            handles[child]?.cancel()
            advance()
            return .nextStep
        case .spawn(let child, let kind) where !kind.isStructured:
            spawnUnstructured(child, kind)
            advance()
            return .nextStep
        default:
            return .waits
        }
    }

    /// Creates a child that outlives the step: a plain thread, or an unstructured task.
    private func spawnUnstructured(_ child: Int, _ kind: ModelSpawn) {
        let context = context
        switch kind {
        case .thread:
            Thread { ModelThreadRunner(id: child, context: context).run() }.start()
        case .detached:
            handles[child] = Task.detached { await ModelRunner(id: child, context: context).run() }
        case .child(.unstructuredTask):
            handles[child] = Task { await ModelRunner(id: child, context: context).run() }
        #if compiler(>=6.2)
        case .child(.immediateTask):
            handles[child] = immediateTask { await ModelRunner(id: child, context: context).run() }
        #endif
        case .child:
            preconditionFailure("\(kind) is structured")
        }
    }

    /// What is left of `error` once the scope it unwound has closed: an abort, or a throw of
    /// more levels, goes on; a throw of one level ends there.
    static func continueUnwinding(_ error: ModelUnwind) throws(ModelUnwind) {
        if error.isAbort { throw error }
        if error.levels > 1 { throw ModelUnwind(levels: error.levels - 1) }
    }
}

/// Runs one task's steps; the steps that wait suspend it.
final class ModelRunner: ModelStepper {
    func run() async {
        context.conductor.started(id, as: TaskDiscriminator().currentKey!)
        do throws(ModelUnwind) {
            try await runBlock()
        } catch {
            // Only an abort gets here: throws of valid programs never leave the task's scopes.
        }
        context.conductor.finished(id)
    }

    private func restOfBlock() async -> Result<Void, ModelUnwind> {
        do throws(ModelUnwind) {
            try await runBlock()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Adds `child` to a task group with `addTask`, and runs the rest of the block beside it;
    /// the group then waits for the child.
    private func restBeside(
        _ child: Int, _ addTask: (@escaping @Sendable () async -> Void) -> Void
    ) async -> Result<Void, ModelUnwind> {
        let context = context
        addTask { await ModelRunner(id: child, context: context).run() }
        advance()
        return await restOfBlock()
    }

    /// Runs steps until the current block ends (`close`, `end`), or throws out of it.
    func runBlock() async throws(ModelUnwind) {
        while pc < plan.count {
            let step = plan[pc].step
            let action = plan[pc].action
            try await context.conductor.turn(id)
            pc += 1
            switch try performShared(action, step: step) {
            case .nextStep: continue
            case .endBlock: return
            case .waits: break
            }
            switch action {
            case .run(let slot, true, let ops):
                var observed: [ModelPart] = []
                await context.snapshot(in: slot).run { () async in
                    Self.runBody(context, ops, &observed)
                }
                context.record(step, observed)
                advance()
            case .discardTask(let local, let target):
                guard let key = await context.conductor.waitStarted(target) else { throw .abort }
                Self.discard(context.locals[local], key)
                advance()
            case .open(let scope):
                do throws(ModelUnwind) {
                    try await Self.withAsyncScope(context.locals[scope.local], scope) { () async throws(ModelUnwind) in
                        self.advance()
                        try await self.runBlock()
                    }
                } catch {
                    try Self.continueUnwinding(error)
                }
            case .spawn(let child, let kind):
                // A structured child: the rest of the block runs beside it, and waits for it.
                let context = context
                switch kind {
                case .child(.asyncLet):
                    async let task: Void = ModelRunner(id: child, context: context).run()
                    advance()
                    let rest = await restOfBlock()
                    await task
                    return try rest.get()
                case .child(.taskGroup):
                    return try await withTaskGroup(of: Void.self) { group in
                        await self.restBeside(child) { group.addTask(operation: $0) }
                    }.get()
                case .child(.throwingTaskGroup):
                    return try await withThrowingTaskGroup(of: Void.self) { group in
                        await self.restBeside(child) { group.addTask(operation: $0) }
                    }.get()
                case .child(.discardingTaskGroup):
                    return try await withDiscardingTaskGroup { group in
                        await self.restBeside(child) { group.addTask(operation: $0) }
                    }.get()
                case .child(.throwingDiscardingTaskGroup):
                    let rest = try? await withThrowingDiscardingTaskGroup { group in
                        await self.restBeside(child) { group.addTask(operation: $0) }
                    }
                    return try (rest ?? .failure(.abort)).get()
                default:
                    preconditionFailure("an unstructured child is created in performShared")
                }
            case .awaitChild(let child):
                advance()
                if let handle = handles[child] {
                    await handle.value
                } else if !(await context.conductor.waitFinished(child)) {
                    throw .abort
                }
            case .checkCancellation(let levels):
                let cancelled = Task.isCancelled
                context.record(step, [.bool(cancelled)])
                advance()
                // Follow the model's path, so that a wrong answer is reported, not a hang.
                if context.expected[step] == [.bool(true)], levels > 0 {
                    throw ModelUnwind(levels: levels)
                }
            default:
                preconditionFailure("performed in performShared: \(action)")
            }
        }
    }
}

/// Runs one plain thread's steps: outside any task, blocking while others take their turns. Its
/// asynchronous-looking scopes are synchronous scopes whose bodies block for their later steps.
final class ModelThreadRunner: ModelStepper {
    func run() {
        context.conductor.started(id, as: TaskDiscriminator().currentKey!)
        do throws(ModelUnwind) {
            try runBlock()
        } catch {
            // Only an abort gets here.
        }
        context.conductor.finished(id)
    }

    func runBlock() throws(ModelUnwind) {
        while pc < plan.count {
            let step = plan[pc].step
            let action = plan[pc].action
            try context.conductor.turnBlocking(id)
            pc += 1
            switch try performShared(action, step: step) {
            case .nextStep: continue
            case .endBlock: return
            case .waits: break
            }
            switch action {
            case .discardTask(let local, let target):
                guard let key = context.conductor.waitStartedBlocking(target) else { throw .abort }
                Self.discard(context.locals[local], key)
                advance()
            case .open(let scope):
                do throws(ModelUnwind) {
                    try Self.withSyncScope(context.locals[scope.local], scope) { () throws(ModelUnwind) in
                        self.advance()
                        try self.runBlock()
                    }
                } catch {
                    try Self.continueUnwinding(error)
                }
            case .awaitChild(let child):
                advance()
                guard context.conductor.waitFinishedBlocking(child) else { throw .abort }
            default:
                // A structured child, an asynchronous run, a cancellation check: tasks only.
                preconditionFailure("not a thread's step: \(action)")
            }
        }
    }
}
