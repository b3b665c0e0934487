// The conductor of a model-check run: it hands the turn from step to step in the program's
// global order, so that real tasks and threads run every step in exactly the order the model
// replays it.

import Foundation
import Locals

/// Tasks wait with continuations; plain threads block on a semaphore.
final class ModelConductor: Sendable {
    /// A plain thread waiting.
    final class Blocked: Sendable {
        private let semaphore = DispatchSemaphore(value: 0)
        private let result = Protected(false)

        func wake(_ ok: Bool) {
            result.withLock { $0 = ok }
            semaphore.signal()
        }

        func wait() -> Bool {
            semaphore.wait()
            return result.withLock { $0 }
        }
    }

    enum Waiter: Sendable {
        case task(CheckedContinuation<Bool, Never>)
        case thread(Blocked)

        func resume(_ ok: Bool) {
            switch self {
            case .task(let continuation): continuation.resume(returning: ok)
            case .thread(let blocked): blocked.wake(ok)
            }
        }
    }

    private struct State {
        var index = 0
        var aborted = false
        var waiting: [Int: Waiter] = [:]
        var started: [Int: TaskDiscriminator.Key] = [:]
        var startWaiters: [Int: [Waiter]] = [:]
        var finished: Set<Int> = []
        var finishWaiters: [Int: [Waiter]] = [:]
    }

    private let order: [Int]
    private let state = Protected(State())

    init(order: [Int]) { self.order = order }

    /// The index of the step whose turn it is.
    var position: Int { state.withLock { $0.index } }

    /// Waits (suspending a task) until `decide` answers; `decide` registers the waiter otherwise.
    private func suspend(_ decide: (inout State, Waiter) -> Bool?) async -> Bool {
        await withCheckedContinuation { continuation in
            let now = state.withLock { decide(&$0, .task(continuation)) }
            if let now { continuation.resume(returning: now) }
        }
    }

    /// Waits (blocking a plain thread) until `decide` answers.
    private func block(_ decide: (inout State, Waiter) -> Bool?) -> Bool {
        let blocked = Blocked()
        if let now = state.withLock({ decide(&$0, .thread(blocked)) }) { return now }
        return blocked.wait()
    }

    private func turnDecision(_ task: Int) -> (inout State, Waiter) -> Bool? {
        { [order] state, waiter in
            if state.aborted { return false }
            if state.index < order.count, order[state.index] == task { return true }
            state.waiting[task] = waiter
            return nil
        }
    }

    private func startDecision(_ task: Int) -> (inout State, Waiter) -> Bool? {
        { state, waiter in
            if state.started[task] != nil { return true }
            if state.aborted { return false }
            state.startWaiters[task, default: []].append(waiter)
            return nil
        }
    }

    private func finishDecision(_ task: Int) -> (inout State, Waiter) -> Bool? {
        { state, waiter in
            if state.finished.contains(task) { return true }
            if state.aborted { return false }
            state.finishWaiters[task, default: []].append(waiter)
            return nil
        }
    }

    /// Waits until the step at the current position belongs to `task`.
    func turn(_ task: Int) async throws(ModelUnwind) {
        if !(await suspend(turnDecision(task))) { throw .abort }
    }

    func turnBlocking(_ task: Int) throws(ModelUnwind) {
        if !block(turnDecision(task)) { throw .abort }
    }

    /// Ends the current step: the next step's task may go.
    func advance() {
        let next = state.withLock { state -> Waiter? in
            state.index += 1
            guard state.index < order.count else { return nil }
            return state.waiting.removeValue(forKey: order[state.index])
        }
        next?.resume(true)
    }

    func started(_ task: Int, as key: TaskDiscriminator.Key) {
        let waiters = state.withLock { state in
            state.started[task] = key
            return state.startWaiters.removeValue(forKey: task) ?? []
        }
        for waiter in waiters { waiter.resume(true) }
    }

    /// The key of `task` (its `TaskID`, or its thread), once it has started; nil on abort.
    func waitStarted(_ task: Int) async -> TaskDiscriminator.Key? {
        await suspend(startDecision(task)) ? state.withLock { $0.started[task] } : nil
    }

    func waitStartedBlocking(_ task: Int) -> TaskDiscriminator.Key? {
        block(startDecision(task)) ? state.withLock { $0.started[task] } : nil
    }

    func finished(_ task: Int) {
        let waiters = state.withLock { state in
            state.finished.insert(task)
            return state.finishWaiters.removeValue(forKey: task) ?? []
        }
        for waiter in waiters { waiter.resume(true) }
    }

    /// Waits until `task` ran its last step; false if the program was aborted.
    func waitFinished(_ task: Int) async -> Bool { await suspend(finishDecision(task)) }

    func waitFinishedBlocking(_ task: Int) -> Bool { block(finishDecision(task)) }

    func isFinished(_ task: Int) -> Bool { state.withLock { $0.finished.contains(task) } }

    /// Stops a hung program: every waiting task and thread is woken and unwinds.
    func abort() {
        let waiters = state.withLock { state in
            state.aborted = true
            defer {
                state.waiting = [:]
                state.startWaiters = [:]
                state.finishWaiters = [:]
            }
            return Array(state.waiting.values) + state.startWaiters.values.flatMap { $0 }
                + state.finishWaiters.values.flatMap { $0 }
        }
        for waiter in waiters { waiter.resume(false) }
    }
}
