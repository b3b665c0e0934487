// Random well-formed programs: the generator runs the model while it chooses each step, so every
// step it picks can run at that point, and a seed names one program on every platform.

import Locals

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
            policies.append(Inheritance.all.randomElement(using: &random)!)
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
        case .list: return .list(nextList(["l\(k)", "m\(k)", "n\(k)"]))
        case .element: return .string("e\(k)")
        case .whole:
            let list = nextList(["wl\(k)", "wm\(k)", "wn\(k)"])
            return .whole(ModelValue(a: "wa\(k)", b: "wb\(k)", n: 1000 + k, list: list))
        }
    }

    /// Mostly the first 2 of `elements`; sometimes fewer, so that an owner shrinks a list that
    /// its children read and write `list[1]` of (and a child its own), or all 3.
    private mutating func nextList(_ elements: [String]) -> [String] {
        switch Int.random(in: 0..<10, using: &random) {
        case 0: []
        case 1, 2: Array(elements.prefix(1))
        case 3: elements
        default: Array(elements.prefix(2))
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
        let inheritance = random.chance(30) ? Inheritance.all.randomElement(using: &random)! : nil
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
        // At depth 0 (a snapshot's run's body) there is no scope to throw out of.
        if depth > 0, random.chance(15) {
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
            switch Int.random(in: 0..<108, using: &random) {
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
            case 100..<104:
                return .capture(slot: Int.random(in: 0..<ModelSnapshot.slots, using: &random))
            case 104..<108:
                // A snapshot taken earlier; rarely a slot with none (an empty `LocalsSnapshot()`).
                let taken = state.snapshots.keys.sorted()
                let slot: Int
                if !taken.isEmpty, random.chance(95) {
                    slot = taken.randomElement(using: &random)!
                } else if random.chance(10) {
                    slot = Int.random(in: 0..<ModelSnapshot.slots, using: &random)
                } else {
                    break
                }
                return .run(slot: slot, async: !task.isThread && random.chance(50), syncBody(depth: 0))
            default:
                break
            }
        }
    }
}
