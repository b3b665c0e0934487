// Timing an operation against its anchor: many iterations per run, the best of several runs, the
// two runs alternating so that drift (frequency changes, a neighbour on the other core) hits both.

/// How long to measure.
struct Settings {
    /// Runs of each operation; the best one counts.
    var runs: Int
    /// About how long one run of one operation lasts; sets its iteration count.
    var secondsPerRun: Double
    /// Sequential tasks of the resident-memory row.
    var sequentialTasks: Int
    /// Tasks alive at once in the bytes-per-entry row.
    var liveTasks: Int
    /// Fresh processes per side of the bytes-per-entry row; the smallest reading counts.
    var liveRounds: Int
    /// About how long one task of a two-tasks row runs in one run. Shorter than `secondsPerRun`:
    /// each of those rows makes four runs per round (one task and two, the row and its control),
    /// and starting a task costs microseconds, still far below this.
    var secondsPerScalingRun: Double

    static let standard = Settings(
        runs: 5, secondsPerRun: 0.25, sequentialTasks: 1_000_000, liveTasks: 100_000, liveRounds: 2,
        secondsPerScalingRun: 0.15
    )
    static let quick = Settings(
        runs: 3, secondsPerRun: 0.04, sequentialTasks: 100_000, liveTasks: 20_000, liveRounds: 1,
        secondsPerScalingRun: 0.03
    )

    static let minimumIterations = 10_000
    static let maximumIterations = 10_000_000
}

/// Nanoseconds per call of `body`, over `iterations` calls.
///
/// Inlined with the closure literal at each use, so that the loop holds the measured code itself,
/// not a call through a closure.
@inline(__always)
func nanosecondsPerOperation(_ iterations: Int, _ body: (Int) -> Void) -> Double {
    let start = System.now()
    for index in 0..<iterations {
        body(index)
    }
    return Double(System.now() - start) / Double(iterations)
}

/// One row's timings: the operation's and the anchor's best ns/op, and how many operations
/// each run made.
struct Timing {
    var operation: Double
    var anchor: Double
    var iterations: Int

    var ratio: Double { operation / anchor }
}

/// Times `operation` and `anchor` (each returns the ns/op of one run of the given number of
/// iterations): a short pilot of each (which also warms them up) sets the iteration count, then
/// `settings.runs` runs of each, alternating, and the best run of each counts.
@inline(__always)
func compare(
    _ settings: Settings,
    operation: (Int) -> Double,
    anchor: (Int) -> Double
) -> Timing {
    let pilot = Settings.minimumIterations
    let slowest = max(operation(pilot), anchor(pilot), operation(pilot), anchor(pilot), 0.1)
    let wanted = Int(settings.secondsPerRun * 1e9 / slowest)
    let iterations = min(max(wanted, Settings.minimumIterations), Settings.maximumIterations)
    var best = Timing(operation: .infinity, anchor: .infinity, iterations: iterations)
    for _ in 0..<settings.runs {
        best.operation = min(best.operation, operation(iterations))
        best.anchor = min(best.anchor, anchor(iterations))
    }
    return best
}

/// ``compare(_:operation:anchor:)`` for rows whose runs await: each run opens a scope, or makes
/// the task that does the timing, before it times.
func compareAsync(
    _ settings: Settings,
    operation: (Int) async -> Double,
    anchor: (Int) async -> Double
) async -> Timing {
    let pilot = Settings.minimumIterations
    var slowest = 0.1
    for _ in 0..<2 {
        slowest = max(slowest, await operation(pilot), await anchor(pilot))
    }
    let wanted = Int(settings.secondsPerRun * 1e9 / slowest)
    let iterations = min(max(wanted, Settings.minimumIterations), Settings.maximumIterations)
    var best = Timing(operation: .infinity, anchor: .infinity, iterations: iterations)
    for _ in 0..<settings.runs {
        best.operation = min(best.operation, await operation(iterations))
        best.anchor = min(best.anchor, await anchor(iterations))
    }
    return best
}
