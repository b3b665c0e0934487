// The library calls a model-check step makes: reads and writes by every syntax, scopes by every
// style, discards, synchronous scopes and snapshot runs, and the bodies inside them. A read,
// write or reset step runs as a body of one op, so that steps and bodies make the same calls.

import Foundation
import Locals

extension ModelStepper {
    /// Performs a step that needs no waiting and runs the same in tasks and on threads; false
    /// for every other step.
    static func performSimple(_ action: ModelAction, step: Int, context: ModelContext) -> Bool {
        switch action {
        case .read, .write, .reset:
            // A body of one op; a read step's syntax alternates with the step's index.
            var observed: [ModelPart] = []
            try? runOps(context, [action.op!], &observed, syntaxFrom: step)
            if !observed.isEmpty { context.record(step, observed) }
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

    /// The body of a synchronous scope or of a snapshot's run, or a read, write or reset step.
    /// Reads alternate between property syntax and a key path, counted from `syntaxFrom`.
    static func runOps(
        _ context: ModelContext, _ ops: [ModelSyncOp], _ observed: inout [ModelPart], syntaxFrom: Int = 0
    ) throws(ModelUnwind) {
        for op in ops {
            switch op {
            case .read(let local, let field):
                let viaKeyPath = (syntaxFrom + observed.count) % 2 == 1
                observed.append(read(context.locals[local], field, viaKeyPath: viaKeyPath))
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
