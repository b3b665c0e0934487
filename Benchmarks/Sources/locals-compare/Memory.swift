// The memory rows and the two-tasks rows of the performance contract.

import Locals
import LocalsBenchmarkSupport

/// A 1 KiB value, as a request's buffer would be.
struct Kilobyte: Sendable {
    var bytes: [UInt8] = []
}

/// The smallest useful value: what remains per entry is the library's own cost.
struct Word: Sendable {
    var x = 0
}

/// Written by each of the sequential tasks.
let kilobytes = Local { Kilobyte() }
/// Written by each of the live tasks; untouched before that row, so its table grows in the row.
let words = Local { Word() }

// MARK: 1,000,000 sequential tasks, each writing 1 KiB

struct SequentialTasksResult {
    var tasks: Int
    var growth: Int
    var nanosecondsPerTask: Double
}

/// Runs `count` tasks one after the other, each writing a fresh 1 KiB value to a `.task` Local.
nonisolated func runSequentialTasks(_ count: Int) async {
    for index in 0..<count {
        await Task {
            kilobytes.bytes = [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1024)
        }.value
    }
}

/// Resident memory growth over `count` sequential tasks, after a warm-up of 10,000.
func measureSequentialTasks(_ count: Int) async -> SequentialTasksResult? {
    await runSequentialTasks(10_000)
    guard let before = System.residentBytes() else { return nil }
    let start = System.now()
    await runSequentialTasks(count)
    let elapsed = System.now() - start
    guard let after = System.residentBytes() else { return nil }
    return SequentialTasksResult(
        tasks: count,
        growth: after - before,
        nanosecondsPerTask: Double(elapsed) / Double(count)
    )
}

// MARK: Bytes per live task entry

/// Holds tasks suspended until it opens.
actor Gate {
    private var waiting: [UnsafeContinuation<Void, Never>] = []

    var count: Int { waiting.count }

    func wait() async {
        await withUnsafeContinuation { waiting.append($0) }
    }

    func open() {
        for continuation in waiting {
            continuation.resume()
        }
        waiting = []
    }
}

struct LiveEntriesResult {
    var tasks: Int
    var untouched: Int
    var touched: Int
    /// Resident bytes per task that wrote to the Local, beyond the same task that did not.
    var bytesPerEntry: Double { Double(touched - untouched) / Double(tasks) }
    var bytesBeyondValue: Double { bytesPerEntry - Double(MemoryLayout<Word>.size) }
}

/// Resident memory while `count` tasks are alive at once, each suspended on a shared gate, after
/// each has written to `words` (if `touching`) or not.
nonisolated func residentWhileAlive(_ count: Int, touching: Bool) async -> Int? {
    let gate = Gate()
    return await withDiscardingTaskGroup { group in
        for index in 0..<count {
            group.addTask {
                if touching {
                    words.x = index
                }
                await gate.wait()
            }
        }
        while await gate.count < count {
            try? await Task.sleep(for: .milliseconds(5))
        }
        let resident = System.residentBytes()
        await gate.open()
        return resident
    }
}

/// Compares resident memory with `count` live tasks that wrote to a Local against as many that
/// did not, each side measured in a fresh process of its own (this executable, run with
/// `--live-entries-child`), so that neither side lands in memory the other freed. Each side runs
/// `rounds` times; the smallest reading of each counts.
func measureLiveEntries(_ count: Int, rounds: Int) -> LiveEntriesResult? {
    guard let executable = System.executablePath else { return nil }
    var untouched = Int.max
    var touched = Int.max
    for _ in 0..<rounds {
        for touching in [false, true] {
            let mode = touching ? "touched" : "untouched"
            guard let output = System.run("'\(executable)' --live-entries-child \(mode) \(count)"),
                let resident = Int(output.split(separator: "\n").last ?? "")
            else { return nil }
            if touching {
                touched = min(touched, resident)
            } else {
                untouched = min(untouched, resident)
            }
        }
    }
    return LiveEntriesResult(tasks: count, untouched: untouched, touched: touched)
}

/// The child's side of ``measureLiveEntries(_:rounds:)``: prints the resident bytes while `count`
/// tasks are alive, after a small warm-up that starts the thread pool.
func liveEntriesChild(touching: Bool, count: Int) async {
    _ = await residentWhileAlive(1_000, touching: false)
    print(await residentWhileAlive(count, touching: touching) ?? -1)
}

// MARK: Reads from 2 tasks at once vs 1

/// What each task of a scaling row does in its loop, and where the tasks are made.
enum ScalingWorkload: Sendable {
    /// `local.x` of a `.task` Local, in plain tasks of the global pool.
    case localRead
    /// The identity call in plain tasks: the control of ``localRead``, which shares nothing
    /// between tasks and so shows how far two tasks can scale on this machine at all.
    case identityCall
    /// `local.x` in children of one `.copy` scope, the scope opened before the clock starts.
    case scopeChildRead
    /// The identity call in children of one `.copy` scope: the control of ``scopeChildRead``.
    case scopeChildIdentityCall
    /// A custom-discriminator Local's `x`, each task bound to a session of its own.
    case sessionRead
    /// The session ID's `@TaskLocal` alone, under the same bindings: the control of
    /// ``sessionRead``. It is the part of a session read that shares nothing between tasks, so
    /// whatever the row falls short of it comes from what the sessions share.
    case sessionIDRead
}

struct ScalingResult {
    var readsPerTask: Int
    var oneTaskSeconds: Double
    var twoTasksSeconds: Double
    /// Total operations per second of two tasks over one task's.
    var ratio: Double { 2 * oneTaskSeconds / twoTasksSeconds }
}

/// Seconds for `tasks` tasks, started together, each to run `workload` `operations` times. The
/// scope of the scope-children rows is opened, and closed, outside the timed part.
nonisolated func timeConcurrent(_ workload: ScalingWorkload, tasks: Int, operations: Int) async -> Double {
    switch workload {
    case .scopeChildRead, .scopeChildIdentityCall:
        await taskLocal.withValues({ $0.x = 1 }, inheritance: .copy) {
            await timeTasks(workload, tasks: tasks, operations: operations)
        }
    case .localRead, .identityCall, .sessionRead, .sessionIDRead:
        await timeTasks(workload, tasks: tasks, operations: operations)
    }
}

/// Seconds for `tasks` task-group children of the running task, started together, each to run
/// `workload` `operations` times.
nonisolated func timeTasks(_ workload: ScalingWorkload, tasks: Int, operations: Int) async -> Double {
    let start = System.now()
    await withDiscardingTaskGroup { group in
        for index in 0..<tasks {
            group.addTask {
                switch workload {
                case .localRead, .scopeChildRead:
                    let local = taskLocal
                    for _ in 0..<operations {
                        sink(local.x)
                    }
                case .identityCall, .scopeChildIdentityCall:
                    for _ in 0..<operations {
                        sink(withUnsafeCurrentTask { unsafeBitCast($0, to: Int.self) })
                    }
                case .sessionRead:
                    let sessions = sessionLocal
                    SessionDiscriminator.$sessionID.withValue(sessionIDs[index]) {
                        for _ in 0..<operations {
                            sink(sessions.x)
                        }
                    }
                case .sessionIDRead:
                    SessionDiscriminator.$sessionID.withValue(sessionIDs[index]) {
                        for _ in 0..<operations {
                            sink(SessionDiscriminator.sessionID)
                        }
                    }
                }
            }
        }
    }
    return Double(System.now() - start) / 1e9
}

/// A scaling row and its control: one task alone against two at once, each, the row's runs and
/// the control's alternating so that a neighbour busy on the other core shows in both; best of
/// `settings.runs` each. `nanoseconds` are the ops' costs, measured earlier, that size the runs.
func measureScaling(
    _ row: ScalingWorkload,
    nanoseconds: Double,
    control: ScalingWorkload,
    controlNanoseconds: Double,
    _ settings: Settings
) async -> (row: ScalingResult, control: ScalingResult) {
    func operations(_ nanoseconds: Double) -> Int {
        max(100_000, Int(settings.secondsPerScalingRun * 1e9 / max(nanoseconds, 1)))
    }
    var results = [operations(nanoseconds), operations(controlNanoseconds)].map {
        ScalingResult(readsPerTask: $0, oneTaskSeconds: .infinity, twoTasksSeconds: .infinity)
    }
    for (index, workload) in [row, control].enumerated() {
        _ = await timeConcurrent(workload, tasks: 2, operations: results[index].readsPerTask / 10)
    }
    for _ in 0..<settings.runs {
        for (index, workload) in [row, control].enumerated() {
            let operations = results[index].readsPerTask
            let one = await timeConcurrent(workload, tasks: 1, operations: operations)
            let two = await timeConcurrent(workload, tasks: 2, operations: operations)
            results[index].oneTaskSeconds = min(results[index].oneTaskSeconds, one)
            results[index].twoTasksSeconds = min(results[index].twoTasksSeconds, two)
        }
    }
    return (results[0], results[1])
}
