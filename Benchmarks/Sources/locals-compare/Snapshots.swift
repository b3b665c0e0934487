// The snapshot rows and the ended-task rows, for information (no target): what capturing and
// running a snapshot cost beside `TaskLocal.withValue`, and how much of ended tasks stays held.

import Dispatch
import Locals
import LocalsBenchmarkSupport

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

extension LocalsCompare {
    struct SnapshotRow {
        var locals: Int
        var capture: Double
        var run: Double
        var anchor: Double
    }

    /// Capture and run with 1, 10 and 100 Locals that each hold a value of the measuring task's
    /// own, beside `TaskLocal.withValue` enter + exit, in the same task.
    static func measureSnapshots(_ settings: Settings) async -> [SnapshotRow] {
        let anchor = Anchor.$value
        var rows: [SnapshotRow] = []
        for count in [1, 10, 100] {
            let row = await Task.detached { () -> SnapshotRow in
                let locals = (0..<count).map { _ in Local { RequestState() } }
                for (index, local) in locals.enumerated() { local.x = index }
                let capture = compare(settings) { n in
                    nanosecondsPerOperation(n) { _ in sink(LocalsSnapshot.capture()) }
                } anchor: { n in
                    nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
                }
                let snapshot = LocalsSnapshot.capture()
                let run = compare(settings) { n in
                    nanosecondsPerOperation(n) { _ in snapshot.run {} }
                } anchor: { n in
                    nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
                }
                withExtendedLifetime(locals) {}
                return SnapshotRow(
                    locals: snapshot.count, capture: capture.operation, run: run.operation,
                    anchor: min(capture.anchor, run.anchor)
                )
            }.value
            rows.append(row)
        }
        return rows
    }

    static func printSnapshots(_ rows: [SnapshotRow]) {
        print("Snapshots (for information; every Local holds a value of the task's own, which capture copies)")
        printTable(
            ["Locals in the snapshot", "capture ns", "run ns (empty body)", "TaskLocal.withValue ns", "run / withValue"],
            rows.map { row in
                [
                    "\(row.locals)", fixed(row.capture, 0), fixed(row.run, 0), fixed(row.anchor, 1),
                    fixed(row.run / row.anchor, 1) + "x",
                ]
            }
        )
    }

    struct EndedTasksResult {
        var touched: Int
        var untouched: Int
        var tasks: Int
    }

    /// Resident growth over `tasks` sequential tasks that each return a 1 MiB result (handles
    /// dropped), with and without touching a Local: how many ended tasks (and their results) the
    /// library keeps.
    static func measureEndedTasks(_ tasks: Int) async -> EndedTasksResult? {
        func growth(touching: Bool) async -> Int? {
            let local = Local { RequestState() }
            guard let before = System.residentBytes() else { return nil }
            for index in 0..<tasks {
                _ = await Task.detached { () -> [UInt8] in
                    if touching { local.x = index }
                    return [UInt8](repeating: UInt8(truncatingIfNeeded: index), count: 1 << 20)
                }.value.count
            }
            guard let after = System.residentBytes() else { return nil }
            withExtendedLifetime(local) {}
            return after - before
        }
        guard let untouched = await growth(touching: false), let touched = await growth(touching: true) else {
            return nil
        }
        return EndedTasksResult(touched: touched, untouched: untouched, tasks: tasks)
    }

    static func printEndedTasks(_ result: EndedTasksResult?) {
        guard let result else { return }
        print(
            "  ended tasks: \(result.tasks) sequential tasks each returning 1 MiB: resident growth "
                + "\(mebibytes(result.touched)) touching a Local, \(mebibytes(result.untouched)) without"
        )
    }
}
