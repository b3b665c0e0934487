// A reference model of what the library promises for `.task` Locals (the Lifetimes and Guarantees
// and the Scopes and Inheritance articles, and the `Local` and `Inheritance` documentation): when
// a value is made, what scopes restore, and what a child sees under each policy. The model check
// runs random programs against it (Generator.swift makes them; Runner.swift runs them with real
// tasks).
//
// The model is plain single-threaded Swift with no locks: it replays a program's steps in their
// global order and says what every read must return. A program is a list of steps, each taken by
// one task; the runner forces that exact global order on real tasks with explicit handoffs, so
// what the documentation leaves racy (a `.copy` child's first touch against the owner's later write) is
// never racy here, and every read has exactly one right answer.

import Locals

/// Why a program is not well formed (a shrinking candidate that cannot run).
struct ModelInvalid: Error, CustomStringConvertible {
    var step: Int
    var reason: String
    var description: String { "step \(step): \(reason)" }
}

/// One open scope's value. Shared by reference between the owner and every child that inherited it.
final class ModelFrame {
    let owner: Int
    let policy: Inheritance
    var value: ModelValue

    init(owner: Int, policy: Inheritance, value: ModelValue) {
        self.owner = owner
        self.policy = policy
        self.value = value
    }
}

/// A task's own storage for one Local: a whole value, or an `.overlay` child's ordered writes.
enum ModelCell {
    case plain(ModelValue)
    case overlay([ModelChange])
}

/// A block of a task's program: its root, or an open scope (sync scopes too, while they run), or
/// one Local's part of a snapshot's run (see ModelSnapshots.swift).
struct ModelBlock {
    var local: Int?
    var frame: ModelFrame?
    /// A snapshot's run of an `.overlay` view: the task reads through `frame` with the run's own
    /// layer (kept in the task's `own` for the run), even where the task owns `frame`.
    var readsThrough = false
    /// Structured children created in this block: they finish before it ends.
    var structured: [Int] = []
    /// A synchronous run's view of a Local, put in place at the first access: what the task writes
    /// there lists the Local as one with a value of its own (see ModelSnapshots.swift).
    var isRunView = false
}

final class ModelTask {
    let id: Int
    let spawn: ModelSpawn?
    let depth: Int
    /// The innermost scope of each Local the task saw when it was created (fixed for its life).
    let inherited: [ModelFrame?]
    var blocks: [ModelBlock] = [ModelBlock()]
    var own: [ModelCell?]
    /// The Locals whose own value a snapshot takes: written outside a scope (or as an `.overlay`
    /// child), or copied from a `.copy` scope; forgotten when the value is dropped.
    var listed: Set<Int> = []
    /// The synchronous snapshot runs the task is in, innermost last: what each still has to put
    /// in place at the task's first access of a Local (see ModelSnapshots.swift).
    var runs: [ModelRunLayer] = []
    var children: [Int] = []
    var blockedOn: Int?
    var ended = false
    var cancelled = false

    init(id: Int, spawn: ModelSpawn?, depth: Int, inherited: [ModelFrame?]) {
        self.id = id
        self.spawn = spawn
        self.depth = depth
        self.inherited = inherited
        own = inherited.map { _ in nil }
    }

    var isUnstructured: Bool { spawn.map { !$0.isStructured } ?? true }
    var isThread: Bool { spawn == .thread }
    /// An unstructured task (not a thread, not the root): one its parent can cancel.
    var isCancellable: Bool { isUnstructured && !isThread && id != ModelState.rootTask }
    var scopeDepth: Int { blocks.count - 1 }
}

/// The documented semantics, replayed one step at a time.
final class ModelState {
    let policies: [Inheritance]
    private(set) var tasks: [Int: ModelTask] = [:]
    private(set) var rootEnded = false
    /// The step being applied (for error messages).
    private var stepIndex = 0
    /// The snapshots taken so far, by slot (see ModelSnapshots.swift).
    var snapshots: [Int: ModelSnapshot] = [:]
    /// How many times each Local's initializer must have run: once per key's first touch, and
    /// again after `reset()` or `discard(key:)` (the `Local` initializer's documentation)...
    private(set) var initializations: [Int]
    /// ...plus up to one more for each reset of a scope's value, and for each first touch inside a
    /// synchronous run that the library may serve from a captured scope in place, with no value
    /// of the task's own (see `mayReadInPlace`).
    private(set) var optionalInitializations: [Int]

    init(policies: [Inheritance]) {
        self.policies = policies
        initializations = policies.map { _ in 0 }
        optionalInitializations = policies.map { _ in 0 }
        tasks[0] = ModelTask(id: 0, spawn: nil, depth: 0, inherited: policies.map { _ in nil })
    }

    static let rootTask = 0

    // MARK: Where a task's value is

    func visibleFrame(_ task: ModelTask, _ local: Int) -> ModelFrame? {
        for block in task.blocks.reversed() where block.local == local {
            return block.frame
        }
        return task.inherited[local]
    }

    enum Place {
        /// A scope the task owns, or a `.shared` scope: its value is read and written in place.
        case frame(ModelFrame)
        /// The task's own value.
        case plain
        /// An `.overlay` child: its own writes over the scope's live value.
        case overlay(ModelFrame, [ModelChange])
    }

    /// Finds the task's value, creating it on first touch (the documentation: a read counts).
    func touch(_ task: ModelTask, _ local: Int) -> Place {
        if let block = task.blocks.last(where: { $0.local == local }), block.readsThrough {
            guard case .overlay(let layer) = task.own[local] else { preconditionFailure("a run with no layer") }
            return .overlay(block.frame!, layer)
        }
        guard let frame = visibleFrame(task, local) else {
            if task.own[local] == nil { task.own[local] = .plain(initialValue(local)) }
            return .plain
        }
        if frame.owner == task.id || frame.policy == .shared {
            return .frame(frame)
        }
        if task.own[local] == nil {
            switch frame.policy {
            case .copy, .shared:
                task.own[local] = .plain(frame.value)
                task.listed.insert(local)
            case .overlay: task.own[local] = .overlay([])
            case .fresh: task.own[local] = .plain(initialValue(local))
            }
        }
        if case .overlay(let layer) = task.own[local] {
            return .overlay(frame, layer)
        }
        return .plain
    }

    func initialValue(_ local: Int) -> ModelValue {
        initializations[local] += 1
        return ModelValue()
    }

    /// Touches `task`'s own value of `local` for a synchronous run that is putting a captured
    /// `.copy` or `.shared` scope (or a copied value) in place. The library serves a read there
    /// from the scope in place (a closed `.copy` scope, a snapshot's copy, a `.shared` scope),
    /// making no value of the task's own, so the
    /// initializer this touch calls may come later (at a write in the run, or the task's next
    /// touch after it), or never: the count allows both.
    func mayReadInPlace(_ task: ModelTask, _ local: Int) {
        let before = initializations[local]
        _ = touch(task, local)
        if initializations[local] > before {
            initializations[local] -= 1
            optionalInitializations[local] += 1
        }
    }

    static func merged(_ layer: [ModelChange], on frame: ModelFrame) -> ModelValue {
        var value = frame.value
        for change in layer { value[change.field] = change.part }
        return value
    }

    func currentValue(_ task: ModelTask, _ local: Int) -> ModelValue {
        value(at: touch(task, local), task, local)
    }

    private func value(at place: Place, _ task: ModelTask, _ local: Int) -> ModelValue {
        switch place {
        case .frame(let frame): return frame.value
        case .plain:
            guard case .plain(let value) = task.own[local] else { preconditionFailure() }
            return value
        case .overlay(let frame, let layer): return Self.merged(layer, on: frame)
        }
    }

    func read(_ task: ModelTask, _ local: Int, _ field: ModelField) -> ModelPart {
        currentValue(task, local)[field]
    }

    /// Applies a write; returns what it observes: nothing, or, for `list[1]` where the task sees a
    /// list of fewer than 2 elements, `.missingElement` (the runner then writes nothing: the
    /// subscript would trap in its own code, as in any user's).
    func write(
        _ task: ModelTask, _ local: Int, _ field: ModelField, _ part: ModelPart, _ style: ModelWriteStyle
    ) -> [ModelPart] {
        let place = touch(task, local)
        if field == .element {
            let visible = value(at: place, task, local)
            if visible.list.count < 2 {
                // The runner checks inside `update`, which has then changed the whole value
                // (unchanged): an `.overlay` child stops reading through all the same. With
                // property syntax it read `list`, with a key path `list.count`: no write.
                if style == .update, case .overlay = place {
                    task.own[local] = .overlay([ModelChange(field: .whole, part: .whole(visible))])
                }
                return [.missingElement(listCount: visible.list.count)]
            }
        }
        if case .frame = place {
            if task.blocks.last(where: { $0.local == local })?.isRunView == true {
                task.listed.insert(local)
            }
        } else {
            task.listed.insert(local)
        }
        switch place {
        case .frame(let frame):
            frame.value[field] = part
        case .plain:
            guard case .plain(var value) = task.own[local] else { preconditionFailure() }
            value[field] = part
            task.own[local] = .plain(value)
        case .overlay(let frame, var layer):
            // An overlay child records the stored parts it writes through, in order (the
            // `Inheritance.overlay` documentation): property syntax on `list[1]` writes all of `list`.
            // `update`, the whole value and an element's own key path (`\.list[1]`, which could
            // trap if replayed on a list the owner shrank) freeze the child's view: from then on
            // its value is what it saw, changed, and nothing reads through.
            var merged = Self.merged(layer, on: frame)
            let change: ModelChange
            switch (style, field) {
            case (.update, _), (.keyPath, .element):
                merged[field] = part
                change = ModelChange(field: .whole, part: .whole(merged))
            case (.property, .element):
                var list = merged.list
                list[1] = part.string
                change = ModelChange(field: .list, part: .list(list))
            default:
                change = ModelChange(field: field, part: part)
            }
            if change.field == .whole {
                layer.removeAll()
            } else {
                layer.removeAll { $0.field == change.field }
            }
            layer.append(change)
            task.own[local] = .overlay(layer)
        }
        return []
    }

    func reset(_ task: ModelTask, _ local: Int) {
        if let block = task.blocks.last(where: { $0.local == local }), block.readsThrough {
            // A snapshot's run of an `.overlay` view drops its own layer, as an `.overlay` child does.
            task.own[local] = .overlay([])
            return
        }
        if let frame = visibleFrame(task, local), frame.owner == task.id || frame.policy == .shared {
            // The library may call the initializer here or at the next touch (its documentation: "again only
            // after reset()"): the count allows both.
            optionalInitializations[local] += 1
            frame.value = ModelValue()
        } else {
            task.own[local] = nil
            task.listed.remove(local)
        }
    }

    func openScope(_ task: ModelTask, _ scope: ModelScope) {
        var value = currentValue(task, scope.local)
        scope.apply(to: &value)
        let frame = ModelFrame(owner: task.id, policy: scope.inheritance ?? policies[scope.local], value: value)
        task.blocks.append(ModelBlock(local: scope.local, frame: frame))
    }

    /// Runs a synchronous scope; returns how many more scopes an error thrown inside still unwinds.
    private func runSync(_ task: ModelTask, _ scope: ModelScope, _ ops: [ModelSyncOp], syncDepth: Int,
                         _ observed: inout [ModelPart]) throws(ModelInvalid) -> Int {
        openScope(task, scope)
        let pending = try runBody(task, ops, syncDepth: syncDepth, &observed)
        task.blocks.removeLast()
        return max(pending - 1, 0)
    }

    /// Runs the body of a synchronous scope (or, at depth 0, of a snapshot's run, or a read,
    /// write or reset step as a body of one op) inside `syncDepth` synchronous scopes; returns
    /// how many of them an error thrown inside unwinds.
    func runBody(_ task: ModelTask, _ ops: [ModelSyncOp], syncDepth: Int,
                 _ observed: inout [ModelPart]) throws(ModelInvalid) -> Int {
        for op in ops {
            switch op {
            case .read(let local, let field):
                try checkLocal(local)
                placeRunPart(task, local)
                observed.append(read(task, local, field))
            case .write(let local, let field, let part, let style):
                try checkLocal(local)
                placeRunPart(task, local)
                observed += write(task, local, field, part, style)
            case .reset(let local):
                try checkLocal(local)
                placeRunPart(task, local)
                reset(task, local)
            case .scope(let inner, let innerOps):
                try checkLocal(inner.local)
                placeRunPart(task, inner.local)
                let left = try runSync(task, inner, innerOps, syncDepth: syncDepth + 1, &observed)
                if left > 0 { return left }
            case .throwOut(let levels):
                guard levels >= 1, levels <= syncDepth else {
                    throw invalid("sync throw of \(levels) levels at depth \(syncDepth)")
                }
                return levels
            }
        }
        return 0
    }

    // MARK: Applying steps

    func invalid(_ reason: String) -> ModelInvalid {
        ModelInvalid(step: stepIndex, reason: reason)
    }

    func checkLocal(_ local: Int) throws(ModelInvalid) {
        guard policies.indices.contains(local) else { throw invalid("no Local L\(local)") }
    }

    func task(_ id: Int) -> ModelTask? { tasks[id] }

    /// Whether the top `levels` blocks of `task` (its root block counts) have no running
    /// structured child.
    func canUnwind(_ task: ModelTask, levels: Int) -> Bool {
        guard levels >= 0, levels <= task.blocks.count else { return false }
        return task.blocks.suffix(levels).allSatisfy { $0.structured.allSatisfy { tasks[$0]?.ended ?? true } }
    }

    private func unwind(_ task: ModelTask, levels: Int) throws(ModelInvalid) {
        guard levels >= 1, levels <= task.scopeDepth else {
            throw invalid("t\(task.id) unwinds \(levels) of \(task.scopeDepth) scopes")
        }
        guard canUnwind(task, levels: levels) else {
            throw invalid("t\(task.id) leaves a block with a running structured child")
        }
        task.blocks.removeLast(levels)
    }

    /// Applies one step and returns what it observes (reads, in order). Throws if the step cannot
    /// run at this point (the program is not well formed).
    func apply(_ step: ModelStep, index: Int) throws(ModelInvalid) -> [ModelPart] {
        stepIndex = index
        guard !rootEnded else { throw invalid("a step after the root task ended") }
        guard let task = tasks[step.task] else { throw invalid("t\(step.task) does not exist yet") }
        guard !task.ended else { throw invalid("t\(task.id) already ended") }
        if let child = task.blockedOn {
            throw invalid("t\(task.id) is waiting for t\(child)")
        }
        switch step.action {
        case .read, .write, .reset:
            // A body of one op, at no synchronous scope's depth.
            var observed: [ModelPart] = []
            _ = try runBody(task, [step.action.op!], syncDepth: 0, &observed)
            return observed
        case .discardSelf(let local, _):
            try checkLocal(local)
            task.own[local] = nil
            task.listed.remove(local)
        case .discardTask(let local, let target):
            try checkLocal(local)
            guard let other = tasks[target], target != task.id else { throw invalid("no task t\(target) to discard") }
            if !other.ended {
                other.own[local] = nil
                other.listed.remove(local)
            }
        case .discardUnknown(let local, _):
            try checkLocal(local)
        case .open(let scope):
            try checkLocal(scope.local)
            openScope(task, scope)
        case .close:
            try unwind(task, levels: 1)
        case .throwOut(let levels):
            try unwind(task, levels: levels)
        case .sync(let scope, let ops):
            try checkLocal(scope.local)
            var observed: [ModelPart] = []
            let left = try runSync(task, scope, ops, syncDepth: 1, &observed)
            guard left == 0 else { throw invalid("a sync throw escapes its step") }
            return observed
        case .spawn(let id, let kind):
            guard tasks[id] == nil else { throw invalid("t\(id) spawned twice") }
            guard !task.isThread || !kind.isStructured else { throw invalid("a thread creates a structured child") }
            let inherited = policies.indices.map { kind == .detached || kind == .thread ? nil : visibleFrame(task, $0) }
            tasks[id] = ModelTask(id: id, spawn: kind, depth: task.depth + 1, inherited: inherited)
            task.children.append(id)
            if kind.isStructured {
                task.blocks[task.blocks.count - 1].structured.append(id)
            }
        case .awaitChild(let id):
            guard task.children.contains(id), let child = tasks[id] else {
                throw invalid("t\(id) is not a child of t\(task.id)")
            }
            if !child.ended { task.blockedOn = id }
        case .cancel(let id):
            guard task.children.contains(id), let child = tasks[id], child.isCancellable else {
                throw invalid("t\(id) is not an unstructured child of t\(task.id)")
            }
            child.cancelled = true
        case .checkCancellation(let levels):
            guard task.isCancellable else { throw invalid("t\(task.id) cannot be cancelled") }
            if task.cancelled, levels > 0 {
                try unwind(task, levels: levels)
            }
            return [.bool(task.cancelled)]
        case .capture(let slot):
            try checkSlot(slot)
            snapshots[slot] = capture(task)
        case .run(let slot, let async, let ops):
            try checkSlot(slot)
            guard !async || !task.isThread else { throw invalid("an await on a plain thread") }
            return try run(task, snapshots[slot] ?? ModelSnapshot(), ops, lazily: !async)
        case .end:
            guard task.scopeDepth == 0 else { throw invalid("t\(task.id) ends inside a scope") }
            guard canUnwind(task, levels: 1) else {
                throw invalid("t\(task.id) ends with a running structured child")
            }
            if task.id == Self.rootTask {
                guard tasks.values.allSatisfy({ $0.ended || $0.id == Self.rootTask }) else {
                    throw invalid("the root ends before every task ended")
                }
                rootEnded = true
            }
            task.ended = true
            for other in tasks.values where other.blockedOn == task.id {
                other.blockedOn = nil
            }
        }
        return []
    }

    /// Replays a whole program: what each step observes, or why it is not well formed.
    /// What a program must do: each step's observations, and each Local's initializer calls.
    struct Expectation {
        var observed: [[ModelPart]]
        var initializerCalls: [ClosedRange<Int>]
    }

    /// Replays a whole program: what it must do, or why it is not well formed.
    static func expectation(_ program: ModelProgram) -> Result<Expectation, ModelInvalid> {
        guard (1...2).contains(program.policies.count) else {
            return .failure(ModelInvalid(step: 0, reason: "1 or 2 Locals"))
        }
        let state = ModelState(policies: program.policies)
        var observed: [[ModelPart]] = []
        for (index, step) in program.steps.enumerated() {
            do {
                observed.append(try state.apply(step, index: index))
            } catch {
                return .failure(error)
            }
        }
        guard state.rootEnded else {
            return .failure(ModelInvalid(step: program.steps.count, reason: "the root task never ends"))
        }
        let calls = zip(state.initializations, state.optionalInitializations).map { $0...($0 + $1) }
        return .success(Expectation(observed: observed, initializerCalls: calls))
    }

    /// Replays a whole program: what each step observes, or why it is not well formed.
    static func simulate(_ program: ModelProgram) -> Result<[[ModelPart]], ModelInvalid> {
        expectation(program).map(\.observed)
    }
}

extension ModelState {
    /// Tasks in creation order (deterministic, unlike the dictionary).
    var tasksByID: [ModelTask] { tasks.keys.sorted().map { tasks[$0]! } }
}
