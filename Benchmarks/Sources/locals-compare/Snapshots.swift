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
    /// One snapshot row: the operation, its anchor, the ratio's target.
    struct SnapshotRow {
        var name: String
        var anchorName: String
        var operation: Double
        var anchor: Double
        /// The ratio's target; nil for a row given for information.
        var target: Double?
        var ratio: Double { operation / anchor }
    }

    /// Runs `body` inside a scope of every Local of `locals`, nested, each with its own value.
    static func withScopes(_ locals: ArraySlice<Local<RequestState>>, _ body: () -> Void) {
        guard let first = locals.first else { return body() }
        first.withValue(\.x, locals.startIndex) { withScopes(locals.dropFirst(), body) }
    }

    /// What a capture and a run cost with `count` Locals in scope (each in a scope of its own,
    /// opened by the capturing task), in a process where `others` more Locals hold values that
    /// other tasks wrote: capture in the scopes' task, run (with an empty body, and with one
    /// read) in another task, each beside `TaskLocal.withValue` enter + exit in the same task.
    static func measureSnapshot(
        _ settings: Settings, inScope count: Int, others: Int, sessionOthers: Bystanders = .none
    ) async -> (capture: Timing, run: Timing, runAndRead: Timing) {
        let locals = (0..<count).map { _ in Local { RequestState() } }
        let bystanders = (0..<others).map { _ in Local { RequestState() } }
        await Task.detached {
            for local in bystanders { local.x = 1 }
        }.value
        let sessionBystanders = sessionOthers.make()
        let anchor = Anchor.$value
        let (capture, snapshot) = await Task.detached { () -> (Timing, LocalsSnapshot) in
            var capture: Timing?
            var snapshot = LocalsSnapshot()
            withScopes(locals[...]) {
                capture = compare(settings) { n in
                    nanosecondsPerOperation(n) { _ in sink(LocalsSnapshot.capture()) }
                } anchor: { n in
                    nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
                }
                snapshot = LocalsSnapshot.capture()
            }
            return (capture!, snapshot)
        }.value
        let (run, runAndRead) = await Task.detached { () -> (Timing, Timing) in
            let run = compare(settings) { n in
                nanosecondsPerOperation(n) { _ in snapshot.run {} }
            } anchor: { n in
                nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
            }
            let local = locals[0]
            let runAndRead = compare(settings) { n in
                nanosecondsPerOperation(n) { _ in snapshot.run { sink(local.x) } }
            } anchor: { n in
                nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
            }
            return (run, runAndRead)
        }.value
        withExtendedLifetime((locals, bystanders, sessionBystanders)) {}
        return (capture, run, runAndRead)
    }

    /// 1,000 session Locals that hold a value in another session than the capturing context's
    /// (which has none): kept per key (`.perKey`: a capture asks their discriminator type for the
    /// key, once for all of them, since it has no stored properties), or keyed by a carried
    /// task-local (`.perCarriedKey`, a capture asks none).
    enum Bystanders {
        /// None; `carriedOnly`: none, with `CarriedSessionDiscriminator`'s task-local carried.
        case none, carriedOnly, perKey, perCarriedKey

        func make() -> [AnyObject] {
            switch self {
            case .none:
                return []
            case .carriedOnly:
                _ = CarriedSessionDiscriminator()  // registers its task-local
                return []
            case .perKey:
                let locals = (0..<1_000).map { _ in Local(SessionDiscriminator()) { RequestState() } }
                SessionDiscriminator.$sessionID.withValue("other") { for local in locals { local.x = 1 } }
                return locals
            case .perCarriedKey:
                let locals = (0..<1_000).map { _ in Local(CarriedSessionDiscriminator()) { RequestState() } }
                CarriedSessionDiscriminator.$sessionID.withValue("other") { for local in locals { local.x = 1 } }
                return locals
            }
        }
    }

    static func measureSnapshots(_ settings: Settings) async -> [SnapshotRow] {
        let ten = await measureSnapshot(settings, inScope: 10, others: 0)
        let hundred = await measureSnapshot(settings, inScope: 100, others: 0)
        let crowded = await measureSnapshot(settings, inScope: 10, others: 1_000)
        // From here on, one task-local is carried: every capture reads it.
        let carrying = await measureSnapshot(settings, inScope: 10, others: 0, sessionOthers: .carriedOnly)
        let carriedSessions = await measureSnapshot(settings, inScope: 10, others: 0, sessionOthers: .perCarriedKey)
        let askedSessions = await measureSnapshot(settings, inScope: 10, others: 0, sessionOthers: .perKey)
        let withValue = "TaskLocal.withValue enter + exit"
        return [
            SnapshotRow(
                name: "snapshot capture, 10 Locals in scope", anchorName: withValue,
                operation: ten.capture.operation, anchor: ten.capture.anchor, target: 3
            ),
            SnapshotRow(
                name: "snapshot capture, 100 Locals in scope", anchorName: "the same with 10",
                operation: hundred.capture.operation, anchor: ten.capture.operation, target: 1.5
            ),
            SnapshotRow(
                name: "snapshot capture, 10 in scope, 1,000 other live Locals", anchorName: "the same without them",
                operation: crowded.capture.operation, anchor: ten.capture.operation, target: 1.2
            ),
            SnapshotRow(
                name: "capture, 10 in scope, 1 task-local carried", anchorName: "the same without it",
                operation: carrying.capture.operation, anchor: ten.capture.operation, target: nil
            ),
            SnapshotRow(
                name: "  and 1,000 .perCarriedKey session Locals", anchorName: "the same without them",
                operation: carriedSessions.capture.operation, anchor: carrying.capture.operation, target: 1.2
            ),
            SnapshotRow(
                name: "  and 1,000 .perKey session Locals", anchorName: "the same without them",
                operation: askedSessions.capture.operation, anchor: carrying.capture.operation, target: nil
            ),
            SnapshotRow(
                name: "snapshot run enter + exit on another task, 10 Locals", anchorName: withValue,
                operation: ten.run.operation, anchor: ten.run.anchor, target: 3
            ),
            SnapshotRow(
                name: "snapshot run enter + exit, 100 Locals in scope", anchorName: "the same with 10",
                operation: hundred.run.operation, anchor: ten.run.operation, target: 1.5
            ),
            SnapshotRow(
                name: "run enter + exit, 10 in scope, 1 task-local carried", anchorName: "the same without it",
                operation: carrying.run.operation, anchor: ten.run.operation, target: nil
            ),
            SnapshotRow(
                name: "snapshot run + one read inside, 10 Locals", anchorName: withValue,
                operation: ten.runAndRead.operation, anchor: ten.runAndRead.anchor, target: 4
            ),
        ]
    }

    static func printSnapshots(_ rows: [SnapshotRow]) {
        print("Snapshots (each row's anchor measured in the same run)")
        printTable(
            ["operation", "anchor", "ns/op", "anchor ns/op", "ratio", "target", "result"],
            rows.map { row in
                [
                    row.name, row.anchorName, fixed(row.operation, 1), fixed(row.anchor, 1),
                    fixed(row.ratio, 2) + "x", row.target.map { "≤ " + fixed($0, 1) + "x" } ?? "none",
                    row.target.map { verdict(row.ratio <= $0) } ?? "for information",
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
