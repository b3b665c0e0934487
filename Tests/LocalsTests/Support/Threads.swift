// Plain threads: running code outside any task, and joining it.

import Foundation

/// Runs `body` on a new Foundation `Thread` (outside any task) and returns its result once the
/// body has finished. The thread may still be exiting when this returns.
func onNewThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        let thread = Thread {
            continuation.resume(returning: body())
        }
        thread.start()
    }
}

/// Synchronous form of `onNewThread`, for code that is itself on a plain thread: joins with a
/// semaphore. Returns nil if the thread did not finish within `timeout` (a hang, i.e. a bug).
/// `stackSize`: the thread's stack, where a test needs a small one (nil: the default).
func onNewThreadBlocking<T: Sendable>(
    timeout: DispatchTimeInterval = .seconds(20), stackSize: Int? = nil, _ body: @escaping @Sendable () -> T
) -> T? {
    let done = DispatchSemaphore(value: 0)
    let result = Protected<T?>(nil)
    let thread = Thread {
        let value = body()
        result.withLock { $0 = value }
        done.signal()
    }
    if let stackSize {
        thread.stackSize = stackSize
    }
    thread.start()
    guard done.wait(timeout: .now() + timeout) == .success else { return nil }
    return result.withLock { $0 }
}

/// A barrier for plain threads: `arriveAndWait()` returns once `count` threads have arrived.
final class ThreadBarrier: @unchecked Sendable {
    // @unchecked: `remaining` is only touched while `condition` is locked.
    private let condition = NSCondition()
    private var remaining: Int

    init(_ count: Int) { remaining = count }

    func arriveAndWait() {
        condition.lock()
        remaining -= 1
        if remaining == 0 { condition.broadcast() }
        while remaining > 0 { condition.wait() }
        condition.unlock()
    }
}

/// One plain thread that runs the blocks given to `run` one after another, always on itself, as
/// an event loop does (a serial `DispatchQueue` may run consecutive blocks on different threads).
/// The thread exits at `stop()`.
final class OneThreadLoop: @unchecked Sendable {
    // @unchecked: `blocks` and `stopped` are only touched while `condition` is locked.
    private let condition = NSCondition()
    private var blocks: [@Sendable () -> Void] = []
    private var stopped = false

    init() {
        Thread { [self] in loop() }.start()
    }

    /// Runs `body` on the loop's thread and returns its result.
    func run<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            submit { continuation.resume(returning: body()) }
        }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }

    private func submit(_ block: @escaping @Sendable () -> Void) {
        condition.lock()
        blocks.append(block)
        condition.signal()
        condition.unlock()
    }

    private func loop() {
        while true {
            condition.lock()
            while blocks.isEmpty, !stopped { condition.wait() }
            if blocks.isEmpty {
                condition.unlock()
                return
            }
            let block = blocks.removeFirst()
            condition.unlock()
            block()
        }
    }
}
