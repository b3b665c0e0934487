// Explicit signals that force orderings between tasks, and a lock Thread Sanitizer can see.
//
// Nothing here sleeps to decide an outcome. The only timeouts are upper bounds that turn a hang
// (a bug) into a failure instead of a stuck CI job.

import Foundation

// MARK: - A lock Thread Sanitizer can see

/// A value guarded by a pthread mutex (through `NSLock`). `Synchronization.Mutex` waits with raw
/// futex calls on Linux, which Thread Sanitizer cannot see, so it would report the helpers' own
/// guarded accesses as races.
final class Protected<State>: @unchecked Sendable {
    // @unchecked: `state` is only touched while `lock` is held.
    private let lock = NSLock()
    private var state: State

    init(_ state: State) { self.state = state }

    func withLock<R>(_ body: (inout State) throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body(&state)
    }
}

// MARK: - Explicit signals

/// A one-shot signal: `wait()` returns once `fire()` was called (before or after the wait).
final class Signal: Sendable {
    private let state = Protected<State>(.pending([]))

    private enum State {
        case pending([CheckedContinuation<Void, Never>])
        case fired
    }

    init() {}

    var isFired: Bool {
        state.withLock { if case .fired = $0 { true } else { false } }
    }

    func fire() {
        let waiters = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            guard case .pending(let waiters) = state else { return [] }
            state = .fired
            return waiters
        }
        for waiter in waiters { waiter.resume() }
    }

    func wait() async {
        await withCheckedContinuation { continuation in
            let fired = state.withLock { state -> Bool in
                switch state {
                case .fired:
                    return true
                case .pending(var waiters):
                    waiters.append(continuation)
                    state = .pending(waiters)
                    return false
                }
            }
            if fired { continuation.resume() }
        }
    }
}

/// A countdown: `arriveAndWait()` returns once `count` tasks have arrived. Forces tasks to be
/// alive at the same time.
final class Latch: Sendable {
    private let remaining: Protected<Int>
    private let open = Signal()

    init(_ count: Int) {
        remaining = Protected(count)
        if count <= 0 { open.fire() }
    }

    func arrive() {
        let left = remaining.withLock { remaining -> Int in
            remaining -= 1
            return remaining
        }
        if left == 0 { open.fire() }
    }

    func wait() async { await open.wait() }

    func arriveAndWait() async {
        arrive()
        await wait()
    }
}

/// Suspends until the current task is cancelled.
func waitUntilCancelled() async {
    let cancelled = Signal()
    await withTaskCancellationHandler {
        await cancelled.wait()
    } onCancel: {
        cancelled.fire()
    }
}

/// Waits (yielding) until `condition` holds; false if it did not within `timeout`. For facts
/// that become true a moment after an event the test cannot observe directly (a task's last
/// release after its awaiter was resumed). The timeout only bounds a failure.
func eventually(timeout: Duration = .seconds(10), _ condition: () -> Bool) async -> Bool {
    let clock = ContinuousClock()
    let deadline = clock.now + timeout
    var spins = 0
    while !condition() {
        if clock.now > deadline { return false }
        spins += 1
        if spins < 1_000 {
            await Task.yield()
        } else {
            try? await Task.sleep(for: .milliseconds(1))
        }
    }
    return true
}

/// A value set once and read from anywhere (to hand a Local to its own initializer, say).
final class Box<T: Sendable>: Sendable {
    private let storage = Protected<T?>(nil)

    init() {}

    var value: T? {
        get { storage.withLock { $0 } }
        set { storage.withLock { $0 = newValue } }
    }
}

/// Collects values from many tasks.
final class Collector<Element: Sendable>: Sendable {
    private let items = Protected<[Element]>([])

    func append(_ item: Element) { items.withLock { $0.append(item) } }

    var values: [Element] { items.withLock { $0 } }
}
