// What tests store and count: the value most tests store in a `Local`, and counters of deinits
// and initializer calls.

import Synchronization

/// The value most tests store in a `Local`. Every field starts at a recognizable initial value.
struct Sample: Sendable {
    static let initial = "initial"
    static let initialList = [initial, initial]

    var simple = Sample.initial
    var late = Sample.initial
    var list = Sample.initialList
    var id = -1
    var count = 0
    var tracked: Tracked?
}

// MARK: - Deinit counting

/// Counts deinitializations of `Tracked` objects, and lets a test wait for a count to be reached.
final class DeinitCounter: Sendable {
    private let state = Protected(State())

    private struct State {
        var count = 0
        var waiters: [(target: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    var count: Int { state.withLock { $0.count } }

    /// A new tracked object whose deinit this counter counts.
    func make(_ tag: Int = 0) -> Tracked { Tracked(tag: tag, counter: self) }

    fileprivate func increment() {
        let ready = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.count += 1
            let count = state.count
            let ready = state.waiters.filter { $0.target <= count }.map(\.continuation)
            state.waiters.removeAll { $0.target <= count }
            return ready
        }
        for continuation in ready { continuation.resume() }
    }

    /// Waits until at least `target` objects were deinitialized; false if that did not happen
    /// within `timeout` (a generous bound that only turns a missing release into a failure).
    func wait(untilAtLeast target: Int, timeout: Duration = .seconds(20)) async -> Bool {
        let reached = Signal()
        Task {
            await withCheckedContinuation { continuation in
                let already = state.withLock { state -> Bool in
                    if state.count >= target { return true }
                    state.waiters.append((target, continuation))
                    return false
                }
                if already { continuation.resume() }
            }
            reached.fire()
        }
        let timer = Task {
            try? await Task.sleep(for: timeout)
            reached.fire()
        }
        await reached.wait()
        timer.cancel()
        return count >= target
    }
}

/// An object whose deinit increments its counter. Store one in a value to see when the value is
/// released.
final class Tracked: Sendable {
    let tag: Int
    let counter: DeinitCounter
    /// Runs in deinit, before the count is incremented (to touch Locals from a deinit).
    let onDeinit: (@Sendable () -> Void)?

    init(tag: Int, counter: DeinitCounter, onDeinit: (@Sendable () -> Void)? = nil) {
        self.tag = tag
        self.counter = counter
        self.onDeinit = onDeinit
    }

    deinit {
        onDeinit?()
        counter.increment()
    }
}

// MARK: - Initializer calls

/// Counts calls of a Local's initializer.
final class CallCounter: Sendable {
    private let calls = Atomic<Int>(0)

    var count: Int { calls.load(ordering: .sequentiallyConsistent) }

    func increment() { calls.add(1, ordering: .sequentiallyConsistent) }

    /// Increments and returns the new count.
    func incremented() -> Int { calls.add(1, ordering: .sequentiallyConsistent).newValue }
}
