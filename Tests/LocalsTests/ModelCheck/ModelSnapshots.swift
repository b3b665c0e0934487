// The model of snapshots (the Callbacks, Event Loops and Queues article and the `LocalsSnapshot`
// documentation): what `LocalsSnapshot.capture()` takes of each Local, and what a task sees of it
// inside `snapshot.run { ... }`.
//
// Capture takes, Local by Local, what a child created at the capture point would see, plus copies
// of the context's own values:
// - inside a scope (its owner, a `.shared` child, or a child that has not touched the Local): the
//   scope, seen in `run` by its policy: `.copy` a copy of its value taken when `run` starts, `.fresh`
//   the initial value (an initializer call, at `run`), `.shared` the scope's value itself, `.overlay`
//   reading through to its live value with writes of `run`'s own;
// - an `.overlay` child's view: the scope, read through, with a copy of the child's own writes (a
//   child whose view froze has a value of its own: copied);
// - the context's own value (no scope, or a `.copy` or `.fresh` child's), where it wrote it outside
//   a scope or copied it from a `.copy` scope: a copy (a value it only read is not taken);
// - nothing, where the context wrote no value of its own and is in no scope of the Local.
//
// `run` first touches the running context's own value of each Local in the snapshot (made as on
// any first touch), then puts the snapshot's in place for its body: an asynchronous run all of
// them when it starts, a synchronous one each at the body's first access of the Local (and an
// `.overlay` child's writes when it starts). Afterwards the running context's values are what
// they were, and what the body wrote is gone, except what it wrote to a `.shared` scope's value.

import Locals

/// What a snapshot took, Local by Local (nil where it took nothing).
struct ModelSnapshot {
    /// Numbered slots a program keeps snapshots in.
    static let slots = 3

    enum Part {
        /// A copy of the context's own value.
        case value(ModelValue)
        /// A scope the context was in, seen in `run` by its policy.
        case scope(ModelFrame)
        /// An `.overlay` child's view: the scope, read through, with a copy of its writes.
        case overlay(ModelFrame, [ModelChange])
        /// Nothing taken: a synchronous run shows the initial value (never in a snapshot itself).
        case initial
    }

    /// By Local; empty for `LocalsSnapshot()`.
    var parts: [Part?] = []
}

extension ModelState {
    func checkSlot(_ slot: Int) throws(ModelInvalid) {
        guard (0..<ModelSnapshot.slots).contains(slot) else { throw invalid("no snapshot slot s\(slot)") }
    }

    /// What `LocalsSnapshot.capture()` takes in `task`. Touches nothing.
    func capture(_ task: ModelTask) -> ModelSnapshot {
        ModelSnapshot(parts: policies.indices.map { captured(task, $0) })
    }

    private func captured(_ task: ModelTask, _ local: Int) -> ModelSnapshot.Part? {
        guard let frame = visibleFrame(task, local) else {
            guard case .plain(let value) = task.own[local], task.listed.contains(local) else { return nil }
            return .value(value)
        }
        if frame.owner == task.id || frame.policy == .shared {
            return .scope(frame)
        }
        switch task.own[local] {
        case nil:
            return .scope(frame)
        case .plain(let value):
            return task.listed.contains(local) ? .value(value) : .scope(frame)
        case .overlay(let layer) where layer.contains { $0.field == .whole }:
            // A frozen view no longer reads through: it is the child's own value.
            return .value(Self.merged(layer, on: frame))
        case .overlay(let layer) where layer.isEmpty:
            // Nothing written: the child reads through the scope, which the captured chain
            // carries (a synchronous run puts it in place at the first access, as any scope).
            return .scope(frame)
        case .overlay(let layer):
            return .overlay(frame, layer)
        }
    }

    /// Runs `ops` in `task` under `snapshot`; returns what they observe. An asynchronous run
    /// puts every part in place when it starts; a synchronous one only `.overlay` children's
    /// writes, and each other part at the task's first access of its Local inside the run.
    func run(
        _ task: ModelTask, _ snapshot: ModelSnapshot, _ ops: [ModelSyncOp], lazily: Bool
    ) throws(ModelInvalid) -> [ModelPart] {
        let layer = ModelRunLayer(base: task.blocks.count, lazily: lazily)
        for local in policies.indices {
            let part = local < snapshot.parts.count ? snapshot.parts[local] : nil
            guard let part else {
                // A synchronous run shows a Local it took nothing of as a child created at the
                // capture point sees it: from the initial value.
                if lazily { layer.pending[local] = .initial }
                continue
            }
            if lazily, case .overlay = part {} else if lazily {
                layer.pending[local] = part
                continue
            }
            place(part, of: local, in: task, layer)
        }
        task.runs.append(layer)
        var observed: [ModelPart] = []
        let unwound = try runBody(task, ops, syncDepth: 0, &observed)
        task.runs.removeLast()
        guard unwound == 0 else {
            throw invalid("a throw escapes a snapshot's run")
        }
        task.blocks.removeSubrange(layer.base...)
        for saved in layer.savedOwn.reversed() {
            task.own[saved.local] = saved.cell
        }
        // What the run wrote was the run's: the task's own values are listed as before it.
        for saved in layer.savedListed.reversed() {
            if saved.listed {
                task.listed.insert(saved.local)
            } else {
                task.listed.remove(saved.local)
            }
        }
        return observed
    }

    /// Puts what the runs the task is in still owe for `local` in place, outermost run first.
    func placeRunPart(_ task: ModelTask, _ local: Int) {
        for layer in task.runs {
            if let part = layer.pending.removeValue(forKey: local) {
                place(part, of: local, in: task, layer)
            }
        }
    }

    /// Touches the running task's own value of `local` (made as on any first touch), then puts
    /// `part` in place: a block at the run's base, under any scope the run's body opened since.
    private func place(_ part: ModelSnapshot.Part, of local: Int, in task: ModelTask, _ layer: ModelRunLayer) {
        // Whether this touch makes the task's own value from the initializer (no scope, or a
        // `.fresh` one it inherited): a view from the initial value then takes that same value.
        let frame = visibleFrame(task, local)
        let makesInitial = task.own[local] == nil
            && (frame == nil || (frame!.policy == .fresh && frame!.owner != task.id))
        switch part {
        case .value where layer.lazily:
            mayReadInPlace(task, local)  // the snapshot's copy of a value, a `.copy` scope of its own
        case .scope(let frame) where layer.lazily && (frame.policy == .copy || frame.policy == .shared):
            mayReadInPlace(task, local)
        default:
            _ = touch(task, local)
        }
        layer.savedListed.append((local, task.listed.contains(local)))
        let block: ModelBlock
        switch part {
        case .initial:
            let value = initialValueOrNil(makesInitial ? task.own[local] : nil) ?? initialValue(local)
            block = ownFrame(task, local, policies[local], value)
        case .value(let value):
            block = ownFrame(task, local, policies[local], value)
        case .scope(let frame):
            switch frame.policy {
            case .copy:
                block = ownFrame(task, local, .copy, frame.value)
            case .fresh:
                block = ownFrame(task, local, .fresh, initialValue(local))
            case .shared:
                block = ModelBlock(local: local, frame: frame)
            case .overlay:
                layer.savedOwn.append((local, task.own[local]))
                task.own[local] = .overlay([])
                block = ModelBlock(local: local, frame: frame, readsThrough: true)
            }
        case .overlay(let frame, let writes):
            layer.savedOwn.append((local, task.own[local]))
            task.own[local] = .overlay(writes)
            block = ModelBlock(local: local, frame: frame, readsThrough: true)
        }
        var placed = block
        // A view a synchronous run opened for the task (not a `.shared` scope it redirects to).
        placed.isRunView = layer.lazily && placed.frame?.owner == task.id
        task.blocks.insert(placed, at: layer.base + layer.placed)
        layer.placed += 1
    }

    /// A scope of the running task's own for the length of a run, as `run` opens one.
    private func ownFrame(_ task: ModelTask, _ local: Int, _ policy: Inheritance, _ value: ModelValue) -> ModelBlock {
        ModelBlock(local: local, frame: ModelFrame(owner: task.id, policy: policy, value: value))
    }
}

/// The value in `cell`, if it is a plain one.
private func initialValueOrNil(_ cell: ModelCell?) -> ModelValue? {
    guard case .plain(let value) = cell else { return nil }
    return value
}

/// One synchronous run a task is in: where its blocks start, what it still has to put in place,
/// and what it changed of the task's own values.
final class ModelRunLayer {
    let base: Int
    let lazily: Bool
    var placed = 0
    var pending: [Int: ModelSnapshot.Part] = [:]
    var savedOwn: [(local: Int, cell: ModelCell?)] = []
    /// Whether each Local the run put in place was listed before: a write inside the run lists
    /// it only while the run lasts.
    var savedListed: [(local: Int, listed: Bool)] = []

    init(base: Int, lazily: Bool) {
        self.base = base
        self.lazily = lazily
    }
}
