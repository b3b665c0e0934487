// Shrinking a failing program: smaller and simpler variants, biggest cuts first, kept while they
// still fail (`ModelCheck.shrink` runs them).

import Locals

extension ModelProgram {
    /// The task ids of `task` and every task it created, directly or not.
    func subtree(_ task: Int) -> Set<Int> {
        var result: Set<Int> = [task]
        var changed = true
        while changed {
            changed = false
            for step in steps {
                if case .spawn(let child, _) = step.action, result.contains(step.task), !result.contains(child) {
                    result.insert(child)
                    changed = true
                }
            }
        }
        return result
    }

    /// Removes the steps at `indices` and every step of the tasks in `tasks` or naming them.
    func removing(steps indices: Set<Int>, tasks: Set<Int> = []) -> ModelProgram {
        var program = self
        program.steps = steps.enumerated().compactMap { index, step in
            if indices.contains(index) || tasks.contains(step.task) { return nil }
            switch step.action {
            case .spawn(let child, _), .awaitChild(let child), .cancel(let child), .discardTask(_, let child):
                if tasks.contains(child) { return nil }
            default:
                break
            }
            return step
        }
        return program
    }

    /// Smaller programs to try, biggest cuts first. Not all are well formed: callers check.
    func shrinkCandidates() -> [ModelProgram] {
        var candidates: [ModelProgram] = []
        // 1. One Local instead of two.
        if policies.count == 2 {
            for keep in 0..<2 {
                if let single = keepingOnlyLocal(keep) { candidates.append(single) }
            }
        }
        // 2. Whole child tasks, with everything they created.
        let spawned = steps.compactMap { step -> Int? in
            if case .spawn(let child, _) = step.action { return child }
            return nil
        }
        for child in spawned {
            candidates.append(removing(steps: [], tasks: subtree(child)))
        }
        // 3. Whole asynchronous scopes (open ... close), with the tasks created inside.
        for (index, step) in steps.enumerated() {
            guard case .open = step.action, let end = matchingClose(of: index) else { continue }
            var removedSteps: Set<Int> = []
            var removedTasks: Set<Int> = []
            for inner in index...end where steps[inner].task == step.task {
                removedSteps.insert(inner)
                if case .spawn(let child, _) = steps[inner].action { removedTasks.formUnion(subtree(child)) }
            }
            candidates.append(removing(steps: removedSteps, tasks: removedTasks))
            // Or keep the body and drop only the scope around it.
            candidates.append(removing(steps: [index, end]))
        }
        // 4. Halves, then single steps.
        let removable = steps.indices.filter { index in
            switch steps[index].action {
            case .end, .spawn, .open, .close: false
            default: true
            }
        }
        if removable.count >= 4 {
            let half = removable.count / 2
            candidates.append(removing(steps: Set(removable.prefix(half))))
            candidates.append(removing(steps: Set(removable.suffix(removable.count - half))))
        }
        for index in removable.reversed() {
            candidates.append(removing(steps: [index]))
        }
        // 5. Simpler steps: smaller sync bodies, plain scopes, throws that unwind one scope.
        for (index, step) in steps.enumerated() {
            var simpler: [ModelAction] = []
            switch step.action {
            case .sync(let scope, let ops):
                for op in ops.indices {
                    simpler.append(.sync(scope, ops.enumerated().filter { $0.offset != op }.map(\.element)))
                }
                for (op, inner) in ops.enumerated() {
                    if case .scope(_, let innerOps) = inner {
                        var flattened = ops
                        let body = innerOps.filter { if case .throwOut = $0 { false } else { true } }
                        flattened.replaceSubrange(op...op, with: body)
                        simpler.append(.sync(scope, flattened))
                    }
                }
                if scope.style != .withScope || scope.inheritance != nil {
                    simpler.append(.sync(ModelScope(local: scope.local, style: .withScope, inheritance: nil), ops))
                }
            case .open(let scope):
                if scope.style != .withScope || scope.inheritance != nil {
                    simpler.append(.open(ModelScope(local: scope.local, style: .withScope, inheritance: nil)))
                }
            case .run(let slot, let async, let ops):
                for op in ops.indices {
                    simpler.append(.run(slot: slot, async: async, ops.enumerated().filter { $0.offset != op }.map(\.element)))
                }
                for (op, inner) in ops.enumerated() {
                    if case .scope(_, let innerOps) = inner {
                        var flattened = ops
                        let body = innerOps.filter { if case .throwOut = $0 { false } else { true } }
                        flattened.replaceSubrange(op...op, with: body)
                        simpler.append(.run(slot: slot, async: async, flattened))
                    }
                }
                if async {
                    simpler.append(.run(slot: slot, async: false, ops))
                }
            case .throwOut(1):
                simpler.append(.close)
            case .throwOut(let levels):
                simpler.append(.throwOut(levels: levels - 1))
            case .write(let local, let field, let part, let style) where style != .property:
                simpler.append(.write(local: local, field: field, part: part, style: .property))
            case .spawn(let child, let kind) where kind != .child(.unstructuredTask):
                simpler.append(.spawn(child: child, kind: .child(.unstructuredTask)))
            default:
                break
            }
            for action in simpler {
                var program = self
                program.steps[index].action = action
                candidates.append(program)
            }
        }
        return candidates
    }

    /// The step that closes the scope opened at `index` (a `close`, or a throw of one level).
    private func matchingClose(of index: Int) -> Int? {
        let task = steps[index].task
        var depth = 0
        for later in (index + 1)..<steps.count where steps[later].task == task {
            switch steps[later].action {
            case .open: depth += 1
            case .close:
                if depth == 0 { return later }
                depth -= 1
            case .throwOut(let levels):
                // A throw of one level at depth 0 closes this scope; one that unwinds it and more
                // scopes cannot be cut out with it.
                if depth < levels { return depth == 0 && levels == 1 ? later : nil }
                depth -= levels
            case .checkCancellation:
                return nil
            default:
                break
            }
        }
        return nil
    }

    /// The program with the steps that use Local `keep` only, or nil if scopes of the other one
    /// would have to go too (that is tried by removing scopes).
    private func keepingOnlyLocal(_ keep: Int) -> ModelProgram? {
        func uses(_ action: ModelAction) -> Int? {
            switch action {
            case .read(let l, _), .write(let l, _, _, _), .reset(let l), .discardSelf(let l, _),
                 .discardTask(let l, _), .discardUnknown(let l, _):
                return l
            case .open(let scope):
                return scope.local
            case .sync(let scope, _):
                return scope.local
            default:
                return nil
            }
        }
        var program = self
        program.policies = [policies[keep]]
        var result: [ModelStep] = []
        for step in steps {
            if case .run(let slot, let async, let ops) = step.action {
                // The body's uses of the other Local go; the snapshot takes only the one left.
                let kept = ops.filter { !$0.usesOtherLocal(than: keep) }.map { $0.renumbered { _ in 0 } }
                result.append(ModelStep(task: step.task, action: .run(slot: slot, async: async, kept)))
                continue
            }
            guard let local = uses(step.action) else {
                result.append(step)
                continue
            }
            if case .open = step.action, local != keep { return nil }
            if local != keep { continue }
            var step = step
            step.action = step.action.renumbered(from: keep)
            if case .sync(let scope, let ops) = step.action,
               scope.local != 0 || ops.contains(where: { $0.usesOtherLocal(than: 0) }) {
                continue
            }
            result.append(step)
        }
        program.steps = result
        return program
    }
}

extension ModelAction {
    /// The same action with Local `from` renamed L0.
    func renumbered(from local: Int) -> ModelAction {
        func r(_ l: Int) -> Int { l == local ? 0 : 1 }
        switch self {
        case .read(let l, let f): return .read(local: r(l), field: f)
        case .write(let l, let f, let p, let s): return .write(local: r(l), field: f, part: p, style: s)
        case .reset(let l): return .reset(local: r(l))
        case .discardSelf(let l, let v): return .discardSelf(local: r(l), viaDiscriminatorKey: v)
        case .discardTask(let l, let t): return .discardTask(local: r(l), target: t)
        case .discardUnknown(let l, let k): return .discardUnknown(local: r(l), key: k)
        case .open(var scope):
            scope.local = r(scope.local)
            return .open(scope)
        case .sync(var scope, let ops):
            scope.local = r(scope.local)
            return .sync(scope, ops.map { $0.renumbered(r) })
        case .run(let slot, let async, let ops):
            return .run(slot: slot, async: async, ops.map { $0.renumbered(r) })
        default: return self
        }
    }
}

extension ModelSyncOp {
    func renumbered(_ r: (Int) -> Int) -> ModelSyncOp {
        switch self {
        case .read(let l, let f): .read(local: r(l), field: f)
        case .write(let l, let f, let p, let s): .write(local: r(l), field: f, part: p, style: s)
        case .reset(let l): .reset(local: r(l))
        case .scope(let scope, let ops):
            .scope(ModelScope(local: r(scope.local), style: scope.style, inheritance: scope.inheritance),
                   ops.map { $0.renumbered(r) })
        case .throwOut: self
        }
    }

    func usesOtherLocal(than local: Int) -> Bool {
        switch self {
        case .read(let l, _), .write(let l, _, _, _), .reset(let l): l != local
        case .scope(let scope, let ops): scope.local != local || ops.contains { $0.usesOtherLocal(than: local) }
        case .throwOut: false
        }
    }
}
