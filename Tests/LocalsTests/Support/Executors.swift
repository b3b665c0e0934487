import Foundation

/// A task executor with two threads of its own: jobs run on thread `target` (0 at first), which
/// a task on it changes to hop to the other thread at its next suspension. The threads stay alive
/// (so a `.thread` value on them stays too) until `stop()`.
final class AlternatingExecutor: TaskExecutor, @unchecked Sendable {
    // @unchecked: `queues`, `threads` and `stopped` are only touched with `condition` locked.
    private let condition = NSCondition()
    private var queues: [[@Sendable () -> Void]] = [[], []]
    private var target = 0
    private var stopped = false

    init() {
        for index in 0..<2 {
            Thread { [self] in loop(index) }.start()
        }
    }

    /// Sends the jobs enqueued from now on to thread `index`.
    func send(to index: Int) {
        condition.lock()
        target = index
        condition.unlock()
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        let me = asUnownedTaskExecutor()
        condition.lock()
        queues[target].append { job.runSynchronously(on: me) }
        condition.broadcast()
        condition.unlock()
    }

    /// Runs `body` on thread `index` (outside any task), and returns its result.
    func run<T: Sendable>(onThread index: Int, _ body: @escaping @Sendable () -> T) async -> T {
        await withCheckedContinuation { continuation in
            condition.lock()
            queues[index].append { continuation.resume(returning: body()) }
            condition.broadcast()
            condition.unlock()
        }
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func loop(_ index: Int) {
        while true {
            condition.lock()
            while queues[index].isEmpty, !stopped { condition.wait() }
            if queues[index].isEmpty {
                condition.unlock()
                return
            }
            let block = queues[index].removeFirst()
            condition.unlock()
            block()
        }
    }
}
