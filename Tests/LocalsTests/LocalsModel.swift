// A reference model of SPEC sections 2-4 for `.task` Locals, and random programs to check the
// library against it (see ModelCheckTests.swift, which runs them with real tasks).
//
// The model is plain single-threaded Swift with no locks: it replays a program's steps in their
// global order and says what every read must return. A program is a list of steps, each taken by
// one task; the runner forces that exact global order on real tasks with explicit handoffs, so
// what the SPEC leaves racy (a `.copy` child's first touch against the owner's later write) is
// never racy here, and every read has exactly one right answer.

import Locals

// MARK: - The stored value

/// The value every Local of a model program stores.
struct ModelValue: Sendable, Equatable, CustomStringConvertible {
    var a = "i"
    var b = "i"
    var n = 0
    var list = ["i", "i"]

    var description: String { "{a: \(a), b: \(b), n: \(n), list: \(list)}" }
}

/// The parts of a `ModelValue` a program reads and writes.
enum ModelField: String, CaseIterable, Sendable {
    case a, b, n, list
    /// `list[1]`: one element, written through property syntax (`local.list[1] = x`, which reads
    /// and writes all of `list`) or through its own key path (`local[dynamicMember: \.list[1]]`).
    case element = "list[1]"
    /// The whole value (`local.value`, `\.self`).
    case whole = "value"
}

/// A value read or written: one field, the whole value, or a cancellation flag.
enum ModelPart: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case list([String])
    case whole(ModelValue)
    case bool(Bool)

    var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .int(let n): "\(n)"
        case .list(let l): "\(l)"
        case .whole(let v): "\(v)"
        case .bool(let b): "\(b)"
        }
    }

    var string: String {
        guard case .string(let s) = self else { preconditionFailure("not a string: \(self)") }
        return s
    }

    var int: Int {
        guard case .int(let n) = self else { preconditionFailure("not an int: \(self)") }
        return n
    }

    var list: [String] {
        guard case .list(let l) = self else { preconditionFailure("not a list: \(self)") }
        return l
    }

    var whole: ModelValue {
        guard case .whole(let v) = self else { preconditionFailure("not a whole value: \(self)") }
        return v
    }
}

extension ModelValue {
    subscript(field: ModelField) -> ModelPart {
        get {
            switch field {
            case .a: .string(a)
            case .b: .string(b)
            case .n: .int(n)
            case .list: .list(list)
            case .element: .string(list[1])
            case .whole: .whole(self)
            }
        }
        set {
            switch field {
            case .a: a = newValue.string
            case .b: b = newValue.string
            case .n: n = newValue.int
            case .list: list = newValue.list
            case .element: list[1] = newValue.string
            case .whole: self = newValue.whole
            }
        }
    }
}

// MARK: - Programs

/// How a step writes a field.
enum ModelWriteStyle: String, Sendable, CaseIterable {
    /// `local.a = x`; for `list[1]`, `local.list[1] = x` (reads and writes all of `list`); for the
    /// whole value, `local.value = v`.
    case property
    /// Through a key path held in a variable, in a generic function: `local[dynamicMember: kp] = x`.
    case keyPath
    /// `local.update { $0.a = x }`.
    case update
}

/// How a child is created: a task by every path, or a plain thread (which runs outside any
/// task: a `.task` Local keys it by thread, and its scopes reach the tasks it creates).
enum ModelSpawn: Sendable, Equatable, CustomStringConvertible {
    case child(ChildKind)
    case detached
    case thread

    var isStructured: Bool {
        switch self {
        case .detached, .thread, .child(.unstructuredTask), .child(.immediateTask): false
        case .child: true
        }
    }

    var description: String {
        switch self {
        case .child(let kind): kind.rawValue
        case .detached: "Task.detached"
        case .thread: "Thread"
        }
    }

    static let all: [ModelSpawn] = ChildKind.allCases.map(ModelSpawn.child) + [.detached, .thread]
}

struct ModelChange: Sendable, Equatable {
    var field: ModelField
    var part: ModelPart
}

/// How a scope is opened.
enum ModelScopeStyle: Sendable, Equatable {
    case withValue(ModelChange)
    case withValues([ModelChange])
    case withScope
}

struct ModelScope: Sendable, Equatable, CustomStringConvertible {
    var local: Int
    var style: ModelScopeStyle
    /// The scope's `inheritance:` argument; nil for the Local's own policy.
    var inheritance: Inheritance?

    func apply(to value: inout ModelValue) {
        switch style {
        case .withValue(let change): value[change.field] = change.part
        case .withValues(let changes): for change in changes { value[change.field] = change.part }
        case .withScope: break
        }
    }

    var description: String {
        let policy = inheritance.map { ", inheritance: .\($0)" } ?? ""
        switch style {
        case .withValue(let change):
            return "L\(local).withValue(\\.\(change.field.rawValue), \(change.part)\(policy))"
        case .withValues(let changes):
            let body = changes.map { "$0.\($0.field.rawValue) = \($0.part)" }.joined(separator: "; ")
            return "L\(local).withValues({ \(body) }\(policy))"
        case .withScope:
            return "L\(local).withScope(\(policy.isEmpty ? "" : String(policy.dropFirst(2))))"
        }
    }
}

/// What a synchronous scope's body does (it runs within one step).
indirect enum ModelSyncOp: Sendable, Equatable {
    case read(local: Int, field: ModelField)
    case write(local: Int, field: ModelField, part: ModelPart, style: ModelWriteStyle)
    case reset(local: Int)
    case scope(ModelScope, [ModelSyncOp])
    /// Throws an error that unwinds this many enclosing synchronous scopes.
    case throwOut(levels: Int)
}

/// Keys of a `.task` Local's key types that it has no storage for. (A key of another type
/// stops the program: see MisuseTests.)
enum ModelUnknownKey: String, Sendable, CaseIterable {
    case thisThread, endedTask
}

enum ModelAction: Sendable, Equatable {
    case read(local: Int, field: ModelField)
    case write(local: Int, field: ModelField, part: ModelPart, style: ModelWriteStyle)
    case reset(local: Int)
    /// `discard(key:)` with the running task's own key (a `TaskID`, or the discriminator's key).
    case discardSelf(local: Int, viaDiscriminatorKey: Bool)
    /// `discard(key:)` with another task's `TaskID` (running or ended).
    case discardTask(local: Int, target: Int)
    case discardUnknown(local: Int, key: ModelUnknownKey)
    /// Opens an asynchronous scope; the task's later steps run inside it until `close`/`throwOut`.
    case open(ModelScope)
    case close
    /// Throws an error that unwinds this many of the task's open asynchronous scopes.
    case throwOut(levels: Int)
    /// A synchronous scope with its whole body, as one step.
    case sync(ModelScope, [ModelSyncOp])
    case spawn(child: Int, kind: ModelSpawn)
    /// Waits for a child to finish (`await task.value`, or its completion for a structured child).
    case awaitChild(Int)
    /// Cancels an unstructured child.
    case cancel(Int)
    /// Reads `Task.isCancelled`; if cancelled, throws out of this many open scopes.
    case checkCancellation(levels: Int)
    /// The task's last step (its open scopes are closed and its structured children done).
    case end
}

struct ModelStep: Sendable, Equatable {
    var task: Int
    var action: ModelAction
}

struct ModelProgram: Sendable, Equatable {
    /// The policy of each Local (one or two).
    var policies: [Inheritance]
    var steps: [ModelStep]
}

// MARK: - The model

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

/// A block of a task's program: its root, or an open scope (sync scopes too, while they run).
struct ModelBlock {
    var local: Int?
    var frame: ModelFrame?
    /// Structured children created in this block: they finish before it ends.
    var structured: [Int] = []
}

final class ModelTask {
    let id: Int
    let spawn: ModelSpawn?
    let depth: Int
    /// The innermost scope of each Local the task saw when it was created (fixed for its life).
    let inherited: [ModelFrame?]
    var blocks: [ModelBlock] = [ModelBlock()]
    var own: [ModelCell?]
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

/// The SPEC's semantics, replayed one step at a time.
final class ModelState {
    let policies: [Inheritance]
    private(set) var tasks: [Int: ModelTask] = [:]
    private(set) var rootEnded = false
    /// The step being applied (for error messages).
    private var stepIndex = 0
    /// How many times each Local's initializer must have run: once per key's first touch, and
    /// again after `reset()` or `discard(key:)` (SPEC 2)...
    private(set) var initializations: [Int]
    /// ...plus up to one more for each reset of a scope's value.
    private(set) var scopeResets: [Int]

    init(policies: [Inheritance]) {
        self.policies = policies
        initializations = policies.map { _ in 0 }
        scopeResets = policies.map { _ in 0 }
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

    private enum Place {
        /// A scope the task owns, or a `.shared` scope: its value is read and written in place.
        case frame(ModelFrame)
        /// The task's own value.
        case plain
        /// An `.overlay` child: its own writes over the scope's live value.
        case overlay(ModelFrame, [ModelChange])
    }

    /// Finds the task's value, creating it on first touch (SPEC: a read counts).
    private func touch(_ task: ModelTask, _ local: Int) -> Place {
        guard let frame = visibleFrame(task, local) else {
            if task.own[local] == nil { task.own[local] = .plain(initialValue(local)) }
            return .plain
        }
        if frame.owner == task.id || frame.policy == .shared {
            return .frame(frame)
        }
        if task.own[local] == nil {
            switch frame.policy {
            case .copy, .shared: task.own[local] = .plain(frame.value)
            case .overlay: task.own[local] = .overlay([])
            case .fresh: task.own[local] = .plain(initialValue(local))
            }
        }
        if case .overlay(let layer) = task.own[local] {
            return .overlay(frame, layer)
        }
        return .plain
    }

    private func initialValue(_ local: Int) -> ModelValue {
        initializations[local] += 1
        return ModelValue()
    }

    private static func merged(_ layer: [ModelChange], on frame: ModelFrame) -> ModelValue {
        var value = frame.value
        for change in layer { value[change.field] = change.part }
        return value
    }

    func currentValue(_ task: ModelTask, _ local: Int) -> ModelValue {
        switch touch(task, local) {
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

    func write(_ task: ModelTask, _ local: Int, _ field: ModelField, _ part: ModelPart, _ style: ModelWriteStyle) {
        switch touch(task, local) {
        case .frame(let frame):
            frame.value[field] = part
        case .plain:
            guard case .plain(var value) = task.own[local] else { preconditionFailure() }
            value[field] = part
            task.own[local] = .plain(value)
        case .overlay(let frame, var layer):
            // An overlay child records the stored parts it writes through, in order (SPEC 4, and
            // the `Inheritance.overlay` docs): property syntax on `list[1]` writes all of `list`.
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
    }

    func reset(_ task: ModelTask, _ local: Int) {
        if let frame = visibleFrame(task, local), frame.owner == task.id || frame.policy == .shared {
            // The library may call the initializer here or at the next touch (SPEC 2: "again only
            // after reset()"): the count allows both.
            scopeResets[local] += 1
            frame.value = ModelValue()
        } else {
            task.own[local] = nil
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
        var pending = 0
        loop: for op in ops {
            switch op {
            case .read(let local, let field):
                try checkLocal(local)
                observed.append(read(task, local, field))
            case .write(let local, let field, let part, let style):
                try checkLocal(local)
                write(task, local, field, part, style)
            case .reset(let local):
                try checkLocal(local)
                reset(task, local)
            case .scope(let inner, let innerOps):
                try checkLocal(inner.local)
                let left = try runSync(task, inner, innerOps, syncDepth: syncDepth + 1, &observed)
                if left > 0 {
                    pending = left
                    break loop
                }
            case .throwOut(let levels):
                guard levels >= 1, levels <= syncDepth else {
                    throw invalid("sync throw of \(levels) levels at depth \(syncDepth)")
                }
                pending = levels
                break loop
            }
        }
        task.blocks.removeLast()
        return max(pending - 1, 0)
    }

    // MARK: Applying steps

    private func invalid(_ reason: String) -> ModelInvalid {
        ModelInvalid(step: stepIndex, reason: reason)
    }

    private func checkLocal(_ local: Int) throws(ModelInvalid) {
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
        case .read(let local, let field):
            try checkLocal(local)
            return [read(task, local, field)]
        case .write(let local, let field, let part, let style):
            try checkLocal(local)
            write(task, local, field, part, style)
        case .reset(let local):
            try checkLocal(local)
            reset(task, local)
        case .discardSelf(let local, _):
            try checkLocal(local)
            task.own[local] = nil
        case .discardTask(let local, let target):
            try checkLocal(local)
            guard let other = tasks[target], target != task.id else { throw invalid("no task t\(target) to discard") }
            if !other.ended { other.own[local] = nil }
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
        let calls = zip(state.initializations, state.scopeResets).map { $0...($0 + $1) }
        return .success(Expectation(observed: observed, initializerCalls: calls))
    }

    /// Replays a whole program: what each step observes, or why it is not well formed.
    static func simulate(_ program: ModelProgram) -> Result<[[ModelPart]], ModelInvalid> {
        expectation(program).map(\.observed)
    }
}

// MARK: - Random programs

/// SplitMix64: small, fast, and the same on every platform, so a seed names one program.
struct ModelRandom: RandomNumberGenerator {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    mutating func chance(_ percent: Int) -> Bool { Int.random(in: 0..<100, using: &self) < percent }
}

/// Generates a random well-formed program by running the model while it chooses each step.
struct ModelGenerator {
    var random: ModelRandom
    var maxSteps: Int
    var maxTasks = 7
    var maxDepth = 3
    var maxScopeDepth = 4
    private var counter = 0
    private var state: ModelState
    private var steps: [ModelStep] = []
    private var policies: [Inheritance]
    private var nextTask = 1

    init(seed: UInt64) {
        var random = ModelRandom(seed: seed)
        var policies: [Inheritance] = []
        for _ in 0..<(random.chance(50) ? 2 : 1) {
            policies.append(Inheritance.allCases.randomElement(using: &random)!)
        }
        maxSteps = random.chance(20) ? Int.random(in: 40...90, using: &random) : Int.random(in: 4...40, using: &random)
        self.random = random
        self.policies = policies
        state = ModelState(policies: policies)
    }

    static func program(seed: UInt64) -> ModelProgram {
        var generator = ModelGenerator(seed: seed)
        return generator.generate()
    }

    private mutating func generate() -> ModelProgram {
        while !state.rootEnded {
            let windDown = steps.count >= maxSteps
            var choices: [(ModelTask, [ModelAction])] = []
            for task in state.tasksByID where !task.ended && task.blockedOn == nil {
                let actions = windDown ? windDownActions(task) : []
                if !windDown || !actions.isEmpty { choices.append((task, actions)) }
            }
            precondition(!choices.isEmpty, "model generator: no task can move")
            let (task, windDownChoices) = choices.randomElement(using: &random)!
            let action = windDown ? windDownChoices.randomElement(using: &random)! : normalAction(task)
            let step = ModelStep(task: task.id, action: action)
            do {
                _ = try state.apply(step, index: steps.count)
            } catch {
                preconditionFailure("model generator made an invalid step: \(error)")
            }
            steps.append(step)
        }
        return ModelProgram(policies: policies, steps: steps)
    }

    // MARK: Choosing steps

    private func runningChildren(_ task: ModelTask) -> [Int] {
        task.children.filter { !(state.task($0)?.ended ?? true) }
    }

    /// Steps that move a task towards its end: close scopes, wait for children, end.
    private mutating func windDownActions(_ task: ModelTask) -> [ModelAction] {
        if task.scopeDepth > 0 {
            if state.canUnwind(task, levels: 1) { return [.close] }
            return task.blocks.last!.structured.filter { !(state.task($0)?.ended ?? true) }.map(ModelAction.awaitChild)
        }
        let running = runningChildren(task)
        let structured = task.blocks[0].structured.filter(running.contains)
        if !structured.isEmpty { return structured.map(ModelAction.awaitChild) }
        if task.id == ModelState.rootTask {
            if !running.isEmpty { return running.map(ModelAction.awaitChild) }
            let others = state.tasksByID.contains { !$0.ended && $0.id != ModelState.rootTask }
            return others ? [] : [.end]
        }
        // Fire-and-forget children may outlive their parent; sometimes wait for them anyway.
        if !running.isEmpty, random.chance(50) { return running.map(ModelAction.awaitChild) }
        return [.end]
    }

    private mutating func nextValue(_ field: ModelField) -> ModelPart {
        counter += 1
        let k = counter
        switch field {
        case .a: return .string("a\(k)")
        case .b: return .string("b\(k)")
        case .n: return .int(k)
        case .list: return .list(["l\(k)", "m\(k)"])
        case .element: return .string("e\(k)")
        case .whole: return .whole(ModelValue(a: "wa\(k)", b: "wb\(k)", n: 1000 + k, list: ["wl\(k)", "wm\(k)"]))
        }
    }

    private mutating func randomLocal() -> Int { Int.random(in: 0..<policies.count, using: &random) }

    private mutating func randomField() -> ModelField {
        // `a`, `list` and `list[1]` most: an element and its list are where `.overlay` children's
        // layers and their owners' writes meet. Whole values are rarer: they hide which part
        // went wrong.
        switch Int.random(in: 0..<100, using: &random) {
        case 0..<25: .a
        case 25..<47: .list
        case 47..<69: .element
        case 69..<80: .b
        case 80..<90: .n
        default: .whole
        }
    }

    private mutating func randomScope() -> ModelScope {
        let local = randomLocal()
        let style: ModelScopeStyle
        switch Int.random(in: 0..<3, using: &random) {
        case 0:
            let field = randomField()
            style = .withValue(ModelChange(field: field, part: nextValue(field)))
        case 1:
            var changes: [ModelChange] = []
            for _ in 0..<Int.random(in: 1...3, using: &random) {
                let field = randomField()
                changes.append(ModelChange(field: field, part: nextValue(field)))
            }
            style = .withValues(changes)
        default:
            style = .withScope
        }
        let inheritance = random.chance(30) ? Inheritance.allCases.randomElement(using: &random)! : nil
        return ModelScope(local: local, style: style, inheritance: inheritance)
    }

    private mutating func syncBody(depth: Int) -> [ModelSyncOp] {
        var ops: [ModelSyncOp] = []
        for _ in 0..<Int.random(in: 0...4, using: &random) {
            switch Int.random(in: 0..<10, using: &random) {
            case 0..<4:
                ops.append(.read(local: randomLocal(), field: randomField()))
            case 4..<7:
                let field = randomField()
                ops.append(.write(local: randomLocal(), field: field, part: nextValue(field),
                                  style: ModelWriteStyle.allCases.randomElement(using: &random)!))
            case 7:
                ops.append(.reset(local: randomLocal()))
            default:
                if depth < 4 {
                    ops.append(.scope(randomScope(), syncBody(depth: depth + 1)))
                }
            }
        }
        if random.chance(15) {
            ops.append(.read(local: randomLocal(), field: randomField()))
            ops.append(.throwOut(levels: Int.random(in: 1...depth, using: &random)))
        }
        return ops
    }

    private mutating func normalAction(_ task: ModelTask) -> ModelAction {
        let running = runningChildren(task)
        let unstructured = task.children.filter { state.task($0)?.isCancellable ?? false }
        let canSpawn = nextTask < maxTasks && task.depth < maxDepth
        let isRoot = task.id == ModelState.rootTask
        while true {
            switch Int.random(in: 0..<100, using: &random) {
            case 0..<28:
                return .read(local: randomLocal(), field: randomField())
            case 28..<46:
                let field = randomField()
                return .write(local: randomLocal(), field: field, part: nextValue(field),
                              style: ModelWriteStyle.allCases.randomElement(using: &random)!)
            case 46..<54 where task.scopeDepth < maxScopeDepth:
                return .open(randomScope())
            case 54..<60 where task.scopeDepth > 0 && state.canUnwind(task, levels: 1):
                return .close
            case 60..<62 where task.scopeDepth > 0:
                let levels = (1...task.scopeDepth).filter { state.canUnwind(task, levels: $0) }
                if let levels = levels.randomElement(using: &random) { return .throwOut(levels: levels) }
            case 62..<67:
                return .sync(randomScope(), syncBody(depth: 1))
            case 67..<76 where canSpawn:
                let id = nextTask
                nextTask += 1
                let kinds = task.isThread ? ModelSpawn.all.filter { !$0.isStructured } : ModelSpawn.all
                return .spawn(child: id, kind: kinds.randomElement(using: &random)!)
            case 76..<81 where !running.isEmpty:
                return .awaitChild(running.randomElement(using: &random)!)
            case 81..<83 where !unstructured.isEmpty:
                return .cancel(unstructured.randomElement(using: &random)!)
            case 83..<86 where task.isCancellable:
                let levels = (0...task.scopeDepth).filter { state.canUnwind(task, levels: $0) }
                return .checkCancellation(levels: levels.randomElement(using: &random) ?? 0)
            case 86..<89:
                return .reset(local: randomLocal())
            case 89..<91:
                return .discardSelf(local: randomLocal(), viaDiscriminatorKey: random.chance(50))
            case 91..<94:
                let others = state.tasksByID.map(\.id).filter { $0 != task.id }
                if let target = others.randomElement(using: &random) {
                    return .discardTask(local: randomLocal(), target: target)
                }
            case 94..<95:
                let key = ModelUnknownKey.allCases.randomElement(using: &random)!
                return .discardUnknown(local: randomLocal(), key: key)
            case 95..<100 where !isRoot && task.scopeDepth == 0 && state.canUnwind(task, levels: 1):
                return .end
            default:
                break
            }
        }
    }
}

extension ModelState {
    /// Tasks in creation order (deterministic, unlike the dictionary).
    var tasksByID: [ModelTask] { tasks.keys.sorted().map { tasks[$0]! } }
}

// MARK: - Shrinking

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

// MARK: - Printing

extension ModelProgram {
    /// The program as pseudo-Swift in its global order, one line per step, indented by each
    /// task's open scopes; `notes` (by step) are appended, e.g. expected and actual reads.
    func listing(notes: [Int: String] = [:]) -> String {
        let locals = policies.enumerated().map { "L\($0.offset) = Local(inheritance: .\($0.element))" }
        var lines = ["Locals: " + locals.joined(separator: ", ")]
        var depth: [Int: Int] = [:]
        for (index, step) in steps.enumerated() {
            var d = depth[step.task, default: 0]
            if case .close = step.action { d -= 1 }
            if case .throwOut(let levels) = step.action { d -= levels }
            let indent = String(repeating: "  ", count: max(d, 0))
            let note = notes[index].map { "   // \($0)" } ?? ""
            lines.append("\(String(index).leftPadded(3)) t\(step.task): \(indent)\(step.action.text)\(note)")
            if case .open = step.action { d += 1 }
            depth[step.task] = d
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension ModelAction {
    var text: String {
        switch self {
        case .read(let l, let f): return "read L\(l).\(f.rawValue)"
        case .write(let l, let f, let p, let s): return ModelSyncOp.writeText(l, f, p, s)
        case .reset(let l): return "L\(l).reset()"
        case .discardSelf(let l, let viaKey):
            let key = viaKey ? "TaskDiscriminator().currentKey!" : "TaskID.current! (ThreadID.current on a thread)"
            return "L\(l).discard(key: \(key))"
        case .discardTask(let l, let t): return "L\(l).discard(key: <TaskID or ThreadID of t\(t)>)"
        case .discardUnknown(let l, let k): return "L\(l).discard(key: <\(k.rawValue)>)"
        case .open(let scope): return "try await \(scope.description) {"
        case .close: return "}"
        case .throwOut(let levels): return "throw (unwinds \(levels) scope\(levels == 1 ? "" : "s"))  }"
        case .sync(let scope, let ops):
            return "try \(scope.description) { \(ops.map(\.text).joined(separator: "; ")) }"
        case .spawn(let child, let kind): return "spawn t\(child) = \(kind)"
        case .awaitChild(let child): return "await t\(child)"
        case .cancel(let child): return "t\(child).cancel()"
        case .checkCancellation(let levels):
            return "read Task.isCancelled; if cancelled, throw (unwinds \(levels) scope\(levels == 1 ? "" : "s"))"
        case .end: return "end of task"
        }
    }
}

extension ModelSyncOp {
    static func writeText(_ l: Int, _ f: ModelField, _ p: ModelPart, _ s: ModelWriteStyle) -> String {
        switch s {
        case .property: "L\(l).\(f.rawValue) = \(p)"
        case .keyPath: "L\(l)[dynamicMember: \\.\(f == .whole ? "self" : f.rawValue)] = \(p)"
        case .update: "L\(l).update { $0.\(f == .whole ? "self" : f.rawValue) = \(p) }"
        }
    }

    var text: String {
        switch self {
        case .read(let l, let f): "read L\(l).\(f.rawValue)"
        case .write(let l, let f, let p, let s): Self.writeText(l, f, p, s)
        case .reset(let l): "L\(l).reset()"
        case .scope(let scope, let ops): "try \(scope.description) { \(ops.map(\.text).joined(separator: "; ")) }"
        case .throwOut(let levels): "throw (unwinds \(levels))"
        }
    }
}
