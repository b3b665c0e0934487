// Prints the performance contract of swift-locals from one run: each operation beside its anchor,
// measured in the same process, alternating, with the ratio, the target, and whether it is met.
//
//     swift run -c release --package-path Benchmarks locals-compare [--quick]

import Locals
import LocalsBenchmarkSupport
import ServiceContextModule

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

@main
struct LocalsCompare {
    static func main() async {
        let arguments = CommandLine.arguments.dropFirst()
        if arguments.first == "--live-entries-child", arguments.count == 3,
            let count = Int(arguments[arguments.startIndex + 2])
        {
            await liveEntriesChild(touching: arguments[arguments.startIndex + 1] == "touched", count: count)
            return
        }
        if arguments.contains("--help") || arguments.contains("-h") {
            print(
                """
                usage: locals-compare [--quick] [--snapshots]

                Prints the performance contract of swift-locals: every operation beside its
                anchor, measured in the same run, with the ratio, the target and whether it is met.
                The default run takes about 45 seconds on 2 cores; --quick takes about 6 seconds
                and is coarser. --snapshots prints only the snapshot rows.
                """
            )
            return
        }
        let settings = arguments.contains("--quick") ? Settings.quick : Settings.standard
        if arguments.contains("--snapshots") {
            printSnapshots(await measureSnapshots(settings))
            return
        }

        // Stage 1 (the process `swift run` started, malloc interposer active): count allocations,
        // then start over without the interposer. Stage 2 measures everything else.
        let counts: AllocationCounts?
        if CleanProcess.isReexecuted {
            counts = getenv(AllocationCounts.environmentKey).flatMap {
                AllocationCounts(decoding: String(cString: $0))
            }
        } else {
            let measured = await Task.detached { await AllocationCounts.measure() }.value
            CleanProcess.reexecute(passing: measured)
            counts = measured
        }
        let interposerActive = AllocationCounts.interposerIsActive

        printHeader(settings)

        let timings = await Task.detached { measureTimings(settings) }.value
        let scoped = await Task.detached { await measureChildAndSessionTimings(settings) }.value
        printTimings(timings, scoped, settings)

        print("")
        print("Heap allocations per steady-state operation (value: RequestState; counted by package-benchmark's")
        print("malloc interposer over 100,000 operations in one task, or in one child of a scope it opened, after")
        print("the first touch; counted twice, the smaller count kept)")
        printAllocations(counts)

        print("")
        print("Memory and scaling")
        fflush(nil)
        let identityCall = timings.read.anchor
        let tasks = await measureScaling(
            .localRead, nanoseconds: timings.read.operation,
            control: .identityCall, controlNanoseconds: identityCall, settings
        )
        let children = await measureScaling(
            .scopeChildRead, nanoseconds: scoped.copyChild.operation,
            control: .scopeChildIdentityCall, controlNanoseconds: identityCall, settings
        )
        let sessions = await measureScaling(
            .sessionRead, nanoseconds: scoped.session.operation,
            control: .sessionIDRead, controlNanoseconds: timings.taskLocalRead.operation, settings
        )
        let scaling = [
            ScalingRow(
                label: "reads from 2 tasks at once vs 1: total throughput",
                tasks: "two tasks", control: "identity calls", row: tasks.row, controlResult: tasks.control
            ),
            ScalingRow(
                label: "reads from 2 children of one .copy scope at once vs 1",
                tasks: "two children of one .copy scope", control: "identity calls in the same children",
                row: children.row, controlResult: children.control
            ),
            ScalingRow(
                label: "reads from 2 tasks in 2 different sessions at once vs 1",
                tasks: "two tasks, each bound to a session of its own",
                control: "the session ID's @TaskLocal read alone",
                row: sessions.row, controlResult: sessions.control
            ),
        ]
        let sequential = await measureSequentialTasks(settings.sequentialTasks)
        let live = measureLiveEntries(settings.liveTasks, rounds: settings.liveRounds)
        printMemory(sequential: sequential, live: live, scaling: scaling, settings)
        printEndedTasks(await measureEndedTasks(200))

        print("")
        fflush(nil)
        printSnapshots(await measureSnapshots(settings))
        if interposerActive {
            print("")
            print("  note: the malloc interposer was active in this process (every block 16 bytes larger), so the")
            print("  memory rows read high; on Linux the tool normally re-runs itself without it.")
        }
    }

    // MARK: Header

    static func printHeader(_ settings: Settings) {
        let swiftVersion = System.run("swift --version")?.split(separator: "\n").first.map(String.init)
        let root = System.libraryRoot
        let revision = System.run("git -C '\(root)' describe --always --dirty --abbrev=10") ?? "unknown"
        print("swift-locals performance: every row of the performance contract beside its anchor, one run")
        print("")
        print("  machine   \(System.cpuModel), \(System.onlineCores) cores (nproc)")
        print("  swift     \(swiftVersion ?? "unknown (swift --version did not run)")")
        print("  library   \(root) at \(revision)")
        if let load = System.loadAverage {
            let busy = load > 0.5 * Double(System.onlineCores)
            let note = busy ? ": the machine is busy, timings are noisy" : ""
            print("  load      \(fixed(load, 2)) (1-minute average at start)\(note)")
        }
        print(
            "  method    best of \(settings.runs) runs per row, operation and anchor alternating, monotonic clock;"
        )
        print("            each operation's result goes through an opaque call (sink), included in both columns")
        print("")
        fflush(nil)
    }

    // MARK: Timing rows

    struct Timings {
        var read: Timing
        var readInScope: Timing
        var threadRead: Timing
        var write: Timing
        var scope: Timing
        var serviceContext: Timing
        var taskLocalRead: Timing
        var loopOverhead: Double
    }

    /// Runs in one task of the global pool, which makes the `.task` rows' storage on first touch.
    static func measureTimings(_ settings: Settings) -> Timings {
        let local = taskLocal
        let perThread = threadLocal
        let anchor = Anchor.$value
        let key = pthreadKey

        let read = compare(settings) { n in
            nanosecondsPerOperation(n) { _ in sink(local.x) }
        } anchor: { n in
            nanosecondsPerOperation(n) { _ in sink(withUnsafeCurrentTask { unsafeBitCast($0, to: Int.self) }) }
        }

        let readInScope = compare(settings) { n in
            local.withValue(\.x, 1) {
                nanosecondsPerOperation(n) { _ in sink(local.x) }
            }
        } anchor: { n in
            anchor.withValue(1) {
                nanosecondsPerOperation(n) { _ in
                    sink(anchor.get() &+ withUnsafeCurrentTask { unsafeBitCast($0, to: Int.self) })
                }
            }
        }

        let threadRead = compare(settings) { n in
            nanosecondsPerOperation(n) { _ in sink(perThread.x) }
        } anchor: { n in
            nanosecondsPerOperation(n) { _ in sink(pthread_getspecific(key)) }
        }

        let write = compare(settings) { n in
            nanosecondsPerOperation(n) { index in local.x = index }
        } anchor: { n in
            nanosecondsPerOperation(n) { _ in sink(local.x) }
        }

        let scope = compare(settings) { n in
            nanosecondsPerOperation(n) { index in local.withValue(\.x, index) {} }
        } anchor: { n in
            nanosecondsPerOperation(n) { index in anchor.withValue(index) {} }
        }

        // Information: the peer users would otherwise pick, and the pieces of the anchors.
        let serviceContext = compare(settings) { n in
            ServiceContext.withValue(serviceContextWithValue(1)) {
                nanosecondsPerOperation(n) { _ in sink(ServiceContext.current?[RequestIDKey.self]) }
            }
        } anchor: { n in
            local.withValue(\.x, 1) {
                nanosecondsPerOperation(n) { _ in sink(local.x) }
            }
        }
        let taskLocalRead = compare(settings) { n in
            anchor.withValue(1) {
                nanosecondsPerOperation(n) { _ in sink(anchor.get()) }
            }
        } anchor: { n in
            nanosecondsPerOperation(n) { index in sink(index) }
        }

        return Timings(
            read: read,
            readInScope: readInScope,
            threadRead: threadRead,
            write: write,
            scope: scope,
            serviceContext: serviceContext,
            taskLocalRead: taskLocalRead,
            loopOverhead: taskLocalRead.anchor
        )
    }

    struct ChildAndSessionTimings {
        var copyChild: Timing
        var freshChild: Timing
        var overlayChild: Timing
        var sharedChild: Timing
        var session: Timing
        var asyncLetCopyChild: Timing
    }

    /// The child rows and the session row. Every child row times its reads inside the child, after
    /// the child's first touch, and so does its anchor: the unscoped rows' anchor is the same read
    /// in a child created outside any scope (a plain task, fresh as the measured child is), and the
    /// `.shared` row's anchor is the owner's read inside a `.shared` scope, opened by a child
    /// created outside any scope, so that both loops run in a new child task alike.
    static func measureChildAndSessionTimings(_ settings: Settings) async -> ChildAndSessionTimings {
        let local = taskLocal

        // The anchor of the `.copy`, `.fresh` and `.overlay` rows.
        let unscopedChildRead = { @Sendable (n: Int) async -> Double in
            await inChild {
                sink(local.x)  // first touch: creates the child's storage
                return nanosecondsPerOperation(n) { _ in sink(local.x) }
            }
        }

        let copyChild = await compareAsync(settings) { n in
            await local.withValues({ $0.x = 1 }, inheritance: .copy) {
                await inChild {
                    sink(local.x)  // first touch: copies the scope's value
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        } anchor: { n in
            await unscopedChildRead(n)
        }

        let freshChild = await compareAsync(settings) { n in
            await local.withValues({ $0.x = 1 }, inheritance: .fresh) {
                await inChild {
                    sink(local.x)  // first touch: makes the initial value
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        } anchor: { n in
            await unscopedChildRead(n)
        }

        let overlayChild = await compareAsync(settings) { n in
            await local.withValues({ $0.x = 1 }, inheritance: .overlay) {
                await inChild {
                    local.user = "child"  // the child's own layer holds one other field
                    sink(local.x)  // x still reads through to the scope's value
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        } anchor: { n in
            await unscopedChildRead(n)
        }

        let sharedChild = await compareAsync(settings) { n in
            await local.withValues({ $0.x = 1 }, inheritance: .shared) {
                await inChild {
                    sink(local.x)
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        } anchor: { n in
            await inChild {
                local.withValues({ $0.x = 1 }, inheritance: .shared) {
                    sink(local.x)
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        }

        // For information: the `.copy` row with `async let` children on both sides.
        let asyncLetCopyChild = await compareAsync(settings) { n in
            await local.withValues({ $0.x = 1 }, inheritance: .copy) {
                await inAsyncLetChild {
                    sink(local.x)
                    return nanosecondsPerOperation(n) { _ in sink(local.x) }
                }
            }
        } anchor: { n in
            await inAsyncLetChild {
                sink(local.x)
                return nanosecondsPerOperation(n) { _ in sink(local.x) }
            }
        }

        // Both sides under the same binding, so that both read the same `@TaskLocal` for the key.
        let sessions = sessionLocal
        let table = sessionTable
        let session = await compareAsync(settings) { n in
            SessionDiscriminator.$sessionID.withValue(sessionIDs[0]) {
                sink(sessions.x)  // the first pilot run's first touch makes the session's value
                return nanosecondsPerOperation(n) { _ in sink(sessions.x) }
            }
        } anchor: { n in
            SessionDiscriminator.$sessionID.withValue(sessionIDs[0]) {
                nanosecondsPerOperation(n) { _ in sink(table.currentX()) }
            }
        }

        return ChildAndSessionTimings(
            copyChild: copyChild,
            freshChild: freshChild,
            overlayChild: overlayChild,
            sharedChild: sharedChild,
            session: session,
            asyncLetCopyChild: asyncLetCopyChild
        )
    }

    static func verdict(_ met: Bool) -> String { met ? "met" : "MISSED" }

    static func printTimings(_ t: Timings, _ c: ChildAndSessionTimings, _ settings: Settings) {
        print("Time per operation (ns/op; value: RequestState { x: Int, requestID: String, user: String? })")
        let rows: [(String, String, Timing, Double)] = [
            ("read local.x, .task, steady state, no scope", "identity call", t.read, 1.5),
            ("read local.x inside a scope", "@TaskLocal read + identity call", t.readInScope, 1.5),
            ("read local.x, .thread", "pthread_getspecific", t.threadRead, 3),
            ("write local.x = v, .task, steady state", "the same read (row 1)", t.write, 1.5),
            ("scope enter + exit: local.withValue(\\.x, v) {}", "TaskLocal.withValue enter + exit", t.scope, 3),
            ("child's read in a .copy scope, after first touch", "unscoped read in a child", c.copyChild, 1.5),
            ("child's read in a .fresh scope, after first touch", "unscoped read in a child", c.freshChild, 1.5),
            ("child's read in an .overlay scope (wrote .user)", "unscoped read in a child", c.overlayChild, 3),
            ("child's read in a .shared scope", "owner's read in a .shared scope", c.sharedChild, 1.5),
            ("read, custom discriminator (session ID)", "Mutex<[String: V]> + currentKey", c.session, 1.5),
        ]
        printTable(
            ["operation", "anchor", "ns/op", "anchor ns/op", "ratio", "target", "result", "ops/run"],
            rows.map { name, anchor, timing, target in
                [
                    name, anchor, fixed(timing.operation, 1), fixed(timing.anchor, 1),
                    fixed(timing.ratio, 2) + "x", "≤ " + fixed(target, 1) + "x",
                    verdict(timing.ratio <= target), grouped(timing.iterations),
                ]
            }
        )
        print("")
        print("  for information, same run:")
        print(
            "    ServiceContext.current?[Key.self] (bound, the peer)  \(fixed(t.serviceContext.operation, 1)) ns/op"
                + "  (Locals read in a scope, same run: \(fixed(t.serviceContext.anchor, 1)) ns/op,"
                + " \(fixed(t.serviceContext.anchor / t.serviceContext.operation, 2))x the peer)"
        )
        let asyncLet = c.asyncLetCopyChild
        print(
            "    async let child's read in a .copy scope             \(fixed(asyncLet.operation, 1)) ns/op"
                + "  (unscoped async let child's read: \(fixed(asyncLet.anchor, 1)) ns/op,"
                + " \(fixed(asyncLet.ratio, 2))x)"
        )
        print("    @TaskLocal read alone (bound)                       \(fixed(t.taskLocalRead.operation, 1)) ns/op")
        print("    loop + sink overhead, in every figure above         \(fixed(t.loopOverhead, 1)) ns/op")
    }

    // MARK: Allocation rows

    static func printAllocations(_ counts: AllocationCounts?) {
        let rows = AllocationCounts.rows.map { row -> [String] in
            guard let value = counts?.perOperation[row.name] else {
                return [row.label, "not counted", row.hasTarget ? "0" : "-", "-"]
            }
            // Digits enough that a single allocation in 100,000 operations does not print as 0.
            let digits = value > 0 && value < 0.0005 ? 5 : 3
            return [
                row.label, fixed(value, digits), row.hasTarget ? "0" : "-",
                row.hasTarget ? verdict(value == 0) : "-",
            ]
        }
        printTable(["operation", "allocations/op", "target", "result"], rows)
    }

    // MARK: Memory rows

    /// A two-tasks row as printed: the row, its control, and how to name them.
    struct ScalingRow {
        var label: String
        /// Who reads, for the note under the table.
        var tasks: String
        /// What the control's tasks do.
        var control: String
        var row: ScalingResult
        var controlResult: ScalingResult
    }

    static func printMemory(
        sequential: SequentialTasksResult?,
        live: LiveEntriesResult?,
        scaling: [ScalingRow],
        _ settings: Settings
    ) {
        var rows: [[String]] = []
        if let sequential {
            let limit = 8 * 1_048_576
            rows.append([
                "\(grouped(sequential.tasks)) sequential tasks, each writing 1 KiB: resident growth",
                mebibytes(sequential.growth), "≤ 8 MiB",
                verdict(sequential.growth <= limit) + (sequential.tasks < 1_000_000 ? " (quick)" : ""),
            ])
        } else {
            rows.append(["sequential tasks, each writing 1 KiB", "no /proc/self/status", "≤ 8 MiB", "-"])
        }
        if let live {
            rows.append([
                "memory per live task entry, beyond the value (\(grouped(live.tasks)) live tasks)",
                fixed(live.bytesBeyondValue, 0) + " B", "≤ 200 B", verdict(live.bytesBeyondValue <= 200),
            ])
        } else {
            rows.append(["memory per live task entry", "no /proc/self/status", "≤ 200 B", "-"])
        }
        for scaling in scaling {
            let ratio = scaling.row.ratio
            rows.append([scaling.label, fixed(ratio, 2) + "x", "≥ 1.7x", verdict(ratio >= 1.7)])
        }
        printTable(["row", "measured", "target", "result"], rows)
        print("")
        if let sequential {
            let microseconds = fixed(sequential.nanosecondsPerTask / 1000, 1)
            print(
                "  sequential tasks: \(microseconds) µs per task (create, write, await); resident memory read"
                    + " after a warm-up of 10,000 tasks, and after the last"
            )
        }
        if let live {
            print(
                "  live entries: resident \(mebibytes(live.untouched).dropFirst()) with \(grouped(live.tasks)) tasks"
                    + " that did not touch the Local, \(mebibytes(live.touched).dropFirst()) with as many that did"
            )
            print(
                "    (each side in fresh processes, smallest of \(settings.liveRounds)):"
                    + " \(fixed(live.bytesPerEntry, 0)) B per entry, less the value's \(MemoryLayout<Word>.size) B"
            )
        }
        for scaling in scaling {
            let one = fixed(scaling.row.oneTaskSeconds * 1000, 0)
            let two = fixed(scaling.row.twoTasksSeconds * 1000, 0)
            let control = scaling.controlResult.ratio
            print(
                "  \(scaling.tasks): \(grouped(scaling.row.readsPerTask)) reads per task; one alone \(one) ms,"
                    + " two at once \(two) ms (best of \(settings.runs))"
            )
            print("    control, \(scaling.control) (nothing shared): 2 at once vs 1 scale \(fixed(control, 2))x")
            if control < 1.7 {
                print("    (the control is below 1.7x: the other core was busy, so the row says little)")
            }
        }
    }
}
