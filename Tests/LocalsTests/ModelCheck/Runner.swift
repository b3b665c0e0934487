// Running a program against the library: what every task of a run shares, the Locals shared by
// many programs, and the runners that take one task's or one plain thread's steps with real
// tasks, scopes and threads.

import Foundation
import Locals

/// An error that unwinds `levels` scopes; `abort` stops a program that hung.
struct ModelUnwind: Error, Equatable {
    var levels: Int
    static let abort = ModelUnwind(levels: .max)
    var isAbort: Bool { levels == .max }
}

/// Hands the turn from step to step in the program's global order, and tells tasks apart.

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

/// Runs one task's steps.
final class ModelRunner {
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

    func run() async {
        context.conductor.started(id, as: TaskDiscriminator().currentKey!)
        do throws(ModelUnwind) {
            try await runBlock()
        } catch {
            // Only an abort gets here: throws of valid programs never leave the task's scopes.
        }
        context.conductor.finished(id)
    }

    private func advance() { context.conductor.advance() }

    private func restOfBlock() async -> Result<Void, ModelUnwind> {
        do throws(ModelUnwind) {
            try await runBlock()
            return .success(())
        } catch {
            return .failure(error)
        }
    }

    /// Runs steps until the current block ends (`close`, `end`), or throws out of it.
    func runBlock() async throws(ModelUnwind) {
        while pc < plan.count {
            let step = plan[pc].step
            let action = plan[pc].action
            try await context.conductor.turn(id)
            pc += 1
            if case .run(let slot, true, let ops) = action {
                var observed: [ModelPart] = []
                await context.snapshot(in: slot).run { () async in
                    Self.runBody(context, ops, &observed)
                }
                context.record(step, observed)
                advance()
                continue
            }
            if Self.performSimple(action, step: step, context: context) {
                advance()
                continue
            }
            switch action {
            case .read, .write, .reset, .discardSelf, .discardUnknown, .sync, .capture, .run:
                preconditionFailure("performed above")
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
                    if error.isAbort { throw error }
                    if error.levels > 1 { throw ModelUnwind(levels: error.levels - 1) }
                }
            case .close, .end:
                advance()
                return
            case .throwOut(let levels):
                advance()
                throw ModelUnwind(levels: levels)
            case .spawn(let child, let kind):
                let context = context
                switch kind {
                case .thread:
                    Thread { ModelThreadRunner(id: child, context: context).run() }.start()
                    advance()
                case .detached:
                    handles[child] = Task.detached { await ModelRunner(id: child, context: context).run() }
                    advance()
                case .child(.unstructuredTask):
                    handles[child] = Task { await ModelRunner(id: child, context: context).run() }
                    advance()
                #if compiler(>=6.2)
                case .child(.immediateTask):
                    handles[child] = immediateTask { await ModelRunner(id: child, context: context).run() }
                    advance()
                #endif
                case .child(.asyncLet):
                    async let task: Void = ModelRunner(id: child, context: context).run()
                    advance()
                    let rest = await restOfBlock()
                    await task
                    return try rest.get()
                case .child(.taskGroup):
                    let rest = await withTaskGroup(of: Void.self) { group -> Result<Void, ModelUnwind> in
                        group.addTask { await ModelRunner(id: child, context: context).run() }
                        self.advance()
                        return await self.restOfBlock()
                    }
                    return try rest.get()
                case .child(.throwingTaskGroup):
                    let rest = await withThrowingTaskGroup(of: Void.self) { group -> Result<Void, ModelUnwind> in
                        group.addTask { await ModelRunner(id: child, context: context).run() }
                        self.advance()
                        return await self.restOfBlock()
                    }
                    return try rest.get()
                case .child(.discardingTaskGroup):
                    let rest = await withDiscardingTaskGroup { group -> Result<Void, ModelUnwind> in
                        group.addTask { await ModelRunner(id: child, context: context).run() }
                        self.advance()
                        return await self.restOfBlock()
                    }
                    return try rest.get()
                case .child(.throwingDiscardingTaskGroup):
                    let rest = try? await withThrowingDiscardingTaskGroup { group -> Result<Void, ModelUnwind> in
                        group.addTask { await ModelRunner(id: child, context: context).run() }
                        self.advance()
                        return await self.restOfBlock()
                    }
                    return try (rest ?? .failure(.abort)).get()
                }
            case .awaitChild(let child):
                advance()
                if let handle = handles[child] {
                    await handle.value
                } else if !(await context.conductor.waitFinished(child)) {
                    throw .abort
                }
            case .cancel(let child):
                handles[child]?.cancel()
                advance()
            case .checkCancellation(let levels):
                let cancelled = Task.isCancelled
                context.record(step, [.bool(cancelled)])
                advance()
                // Follow the model's path, so that a wrong answer is reported, not a hang.
                if context.expected[step] == [.bool(true)], levels > 0 {
                    throw ModelUnwind(levels: levels)
                }
            }
        }
    }

    /// Performs a step that needs no waiting and runs the same in tasks and on threads; false
    /// for every other step.
    static func performSimple(_ action: ModelAction, step: Int, context: ModelContext) -> Bool {
        switch action {
        case .read(let local, let field):
            context.record(step, [read(context.locals[local], field, viaKeyPath: step % 2 == 1)])
        case .write(let local, let field, let part, let style):
            let observed = write(context.locals[local], field, part, style)
            if !observed.isEmpty { context.record(step, observed) }
        case .reset(let local):
            context.locals[local].reset()
        case .discardSelf(let local, let viaDiscriminatorKey):
            if viaDiscriminatorKey {
                context.locals[local].discard(key: TaskDiscriminator().currentKey!)
            } else if let task = TaskID.current {
                context.locals[local].discard(key: task)
            } else {
                context.locals[local].discard(key: ThreadID.current)
            }
        case .discardUnknown(let local, let key):
            switch key {
            case .thisThread:
                // Outside any task this is the running thread's own key: use another thread's.
                context.locals[local].discard(key: TaskID.current == nil ? context.otherThread : ThreadID.current)
            case .endedTask: context.locals[local].discard(key: context.endedTask)
            }
        case .sync(let scope, let ops):
            var observed: [ModelPart] = []
            do throws(ModelUnwind) {
                try runSync(context, scope, ops, &observed)
            } catch {
                // A throw of one level ends the step's own scope; more would escape the step.
                if error.levels > 1 { observed.append(.string("<a throw escaped its sync scopes>")) }
            }
            context.record(step, observed)
        case .capture(let slot):
            context.keep(LocalsSnapshot.capture(), in: slot)
        case .run(let slot, false, let ops):
            var observed: [ModelPart] = []
            context.snapshot(in: slot).run { runBody(context, ops, &observed) }
            context.record(step, observed)
        default:
            return false
        }
        return true
    }

    /// A snapshot's run's body (whose throws never leave the synchronous scopes inside it).
    static func runBody(_ context: ModelContext, _ ops: [ModelSyncOp], _ observed: inout [ModelPart]) {
        do throws(ModelUnwind) {
            try runOps(context, ops, &observed)
        } catch {
            observed.append(.string("<a throw escaped a snapshot's run>"))
        }
    }

    /// Discards another task's or thread's key: by `TaskID` for a task, by the key otherwise.
    static func discard(_ local: Local<ModelValue>, _ key: TaskDiscriminator.Key) {
        switch key {
        case .task(let task): local.discard(key: task)
        case .thread: local.discard(key: key)
        }
    }

    /// A synchronous scope and its body.
    static func runSync(
        _ context: ModelContext, _ scope: ModelScope, _ ops: [ModelSyncOp], _ observed: inout [ModelPart]
    ) throws(ModelUnwind) {
        try withSyncScope(context.locals[scope.local], scope) { () throws(ModelUnwind) in
            try runOps(context, ops, &observed)
        }
    }

    /// The body of a synchronous scope or of a snapshot's run.
    static func runOps(
        _ context: ModelContext, _ ops: [ModelSyncOp], _ observed: inout [ModelPart]
    ) throws(ModelUnwind) {
        for op in ops {
            switch op {
            case .read(let local, let field):
                observed.append(read(context.locals[local], field, viaKeyPath: observed.count % 2 == 1))
            case .write(let local, let field, let part, let style):
                observed += write(context.locals[local], field, part, style)
            case .reset(let local):
                context.locals[local].reset()
            case .scope(let inner, let innerOps):
                do throws(ModelUnwind) {
                    try runSync(context, inner, innerOps, &observed)
                } catch {
                    if error.levels > 1 { throw ModelUnwind(levels: error.levels - 1) }
                }
            case .throwOut(let levels):
                throw ModelUnwind(levels: levels)
            }
        }
    }

    // MARK: The library calls

    // `list[1]` is read and written only where the list has 2 elements or more: the subscript would
    // trap in this code, as in any user's, not in the library. Where it has fewer, the step
    // observes `.missingElement` instead, as the model says (`ModelState.write`). Property syntax
    // (`local.list[1]`) is spelled out as the read and write of `list` the compiler makes of it.

    static func read(_ local: Local<ModelValue>, _ field: ModelField, viaKeyPath: Bool) -> ModelPart {
        if viaKeyPath {
            func get<T>(_ keyPath: WritableKeyPath<ModelValue, T>) -> T { local[dynamicMember: keyPath] }
            func get<T>(_ keyPath: KeyPath<ModelValue, T>) -> T { local[dynamicMember: keyPath] }
            switch field {
            case .a: return .string(get(\.a))
            case .b: return .string(get(\.b))
            case .n: return .int(get(\.n))
            case .list: return .list(get(\.list))
            case .element:
                let count = get(\.list.count)
                return count >= 2 ? .string(get(\.list[1])) : .missingElement(listCount: count)
            case .whole: return .whole(get(\.self))
            }
        }
        switch field {
        case .a: return .string(local.a)
        case .b: return .string(local.b)
        case .n: return .int(local.n)
        case .list: return .list(local.list)
        case .element:
            let list = local.list
            return list.count >= 2 ? .string(list[1]) : .missingElement(listCount: list.count)
        case .whole: return .whole(local.value)
        }
    }

    /// Writes `part`; returns what the write observes (see `ModelState.write`).
    static func write(
        _ local: Local<ModelValue>, _ field: ModelField, _ part: ModelPart, _ style: ModelWriteStyle
    ) -> [ModelPart] {
        switch style {
        case .property:
            switch field {
            case .a: local.a = part.string
            case .b: local.b = part.string
            case .n: local.n = part.int
            case .list: local.list = part.list
            case .element:
                var list = local.list
                guard list.count >= 2 else { return [.missingElement(listCount: list.count)] }
                list[1] = part.string
                local.list = list
            case .whole: local.value = part.whole
            }
        case .keyPath:
            func set<T>(_ keyPath: WritableKeyPath<ModelValue, T>, _ value: T) { local[dynamicMember: keyPath] = value }
            func get<T>(_ keyPath: KeyPath<ModelValue, T>) -> T { local[dynamicMember: keyPath] }
            switch field {
            case .a: set(\.a, part.string)
            case .b: set(\.b, part.string)
            case .n: set(\.n, part.int)
            case .list: set(\.list, part.list)
            case .element:
                let count = get(\.list.count)
                guard count >= 2 else { return [.missingElement(listCount: count)] }
                set(\.list[1], part.string)
            case .whole: set(\.self, part.whole)
            }
        case .update:
            let missing = local.update { value -> [ModelPart] in
                guard field != .element || value.list.count >= 2 else {
                    return [.missingElement(listCount: value.list.count)]
                }
                value[field] = part
                return []
            }
            return missing
        }
        return []
    }

    static func withAsyncScope(
        _ local: Local<ModelValue>, _ scope: ModelScope, _ body: () async throws(ModelUnwind) -> Void
    ) async throws(ModelUnwind) {
        let policy = scope.inheritance
        switch scope.style {
        case .withValue(let change):
            let part = change.part
            switch change.field {
            case .a: try await local.withValue(\.a, part.string, inheritance: policy, operation: body)
            case .b: try await local.withValue(\.b, part.string, inheritance: policy, operation: body)
            case .n: try await local.withValue(\.n, part.int, inheritance: policy, operation: body)
            case .list: try await local.withValue(\.list, part.list, inheritance: policy, operation: body)
            case .element where local.list.count >= 2:
                try await local.withValue(\.list[1], part.string, inheritance: policy, operation: body)
            case .element:  // no `list[1]` to change (see `ModelScope.apply`)
                try await local.withScope(inheritance: policy, operation: body)
            case .whole: try await local.withValue(\.self, part.whole, inheritance: policy, operation: body)
            }
        case .withValues:
            try await local.withValues({ scope.apply(to: &$0) }, inheritance: policy, operation: body)
        case .withScope:
            try await local.withScope(inheritance: policy, operation: body)
        }
    }

    static func withSyncScope(
        _ local: Local<ModelValue>, _ scope: ModelScope, _ body: () throws(ModelUnwind) -> Void
    ) throws(ModelUnwind) {
        let policy = scope.inheritance
        switch scope.style {
        case .withValue(let change):
            let part = change.part
            switch change.field {
            case .a: try local.withValue(\.a, part.string, inheritance: policy, operation: body)
            case .b: try local.withValue(\.b, part.string, inheritance: policy, operation: body)
            case .n: try local.withValue(\.n, part.int, inheritance: policy, operation: body)
            case .list: try local.withValue(\.list, part.list, inheritance: policy, operation: body)
            case .element where local.list.count >= 2:
                try local.withValue(\.list[1], part.string, inheritance: policy, operation: body)
            case .element:  // no `list[1]` to change (see `ModelScope.apply`)
                try local.withScope(inheritance: policy, operation: body)
            case .whole: try local.withValue(\.self, part.whole, inheritance: policy, operation: body)
            }
        case .withValues:
            try local.withValues({ scope.apply(to: &$0) }, inheritance: policy, operation: body)
        case .withScope:
            try local.withScope(inheritance: policy, operation: body)
        }
    }
}

/// Runs one plain thread's steps: outside any task, blocking while others take their turns. Its
/// asynchronous-looking scopes are synchronous scopes whose bodies block for their later steps.
final class ModelThreadRunner {
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

    func run() {
        context.conductor.started(id, as: TaskDiscriminator().currentKey!)
        do throws(ModelUnwind) {
            try runBlock()
        } catch {
            // Only an abort gets here.
        }
        context.conductor.finished(id)
    }

    private func advance() { context.conductor.advance() }

    func runBlock() throws(ModelUnwind) {
        while pc < plan.count {
            let step = plan[pc].step
            let action = plan[pc].action
            try context.conductor.turnBlocking(id)
            pc += 1
            if ModelRunner.performSimple(action, step: step, context: context) {
                advance()
                continue
            }
            switch action {
            case .discardTask(let local, let target):
                guard let key = context.conductor.waitStartedBlocking(target) else { throw .abort }
                ModelRunner.discard(context.locals[local], key)
                advance()
            case .open(let scope):
                do throws(ModelUnwind) {
                    try ModelRunner.withSyncScope(context.locals[scope.local], scope) { () throws(ModelUnwind) in
                        self.advance()
                        try self.runBlock()
                    }
                } catch {
                    if error.isAbort { throw error }
                    if error.levels > 1 { throw ModelUnwind(levels: error.levels - 1) }
                }
            case .close, .end:
                advance()
                return
            case .throwOut(let levels):
                advance()
                throw ModelUnwind(levels: levels)
            case .spawn(let child, let kind):
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
                    preconditionFailure("a thread creates no structured child")
                }
                advance()
            case .awaitChild(let child):
                advance()
                guard context.conductor.waitFinishedBlocking(child) else { throw .abort }
            case .cancel(let child):
                handles[child]?.cancel()
                advance()
            case .read, .write, .reset, .discardSelf, .discardUnknown, .sync, .capture, .run, .checkCancellation:
                preconditionFailure("not a thread's step: \(action)")
            }
        }
    }
}
