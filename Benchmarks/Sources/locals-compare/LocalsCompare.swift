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
                usage: locals-compare [--quick]

                Prints the performance contract of swift-locals: every operation beside its
                anchor, measured in the same run, with the ratio, the target and whether it is met.
                The default run takes about 30 seconds on 2 cores; --quick takes about 5 seconds
                and is coarser.
                """
            )
            return
        }
        let settings = arguments.contains("--quick") ? Settings.quick : Settings.standard

        // Stage 1 (the process `swift run` started, malloc interposer active): count allocations,
        // then start over without the interposer. Stage 2 measures everything else.
        let counts: AllocationCounts?
        if CleanProcess.isReexecuted {
            counts = getenv(AllocationCounts.environmentKey).flatMap {
                AllocationCounts(decoding: String(cString: $0))
            }
        } else {
            let measured = await Task.detached { AllocationCounts.measure() }.value
            CleanProcess.reexecute(passing: measured)
            counts = measured
        }
        let interposerActive = AllocationCounts.interposerIsActive

        printHeader(settings)

        let timings = await Task.detached { measureTimings(settings) }.value
        printTimings(timings, settings)

        print("")
        print("Heap allocations per steady-state operation (value: RequestState; counted by package-benchmark's")
        print("malloc interposer over 100,000 operations in one task)")
        printAllocations(counts)

        print("")
        print("Memory and scaling")
        fflush(nil)
        let scaling = await measureScaling(.localRead, settings, nanoseconds: timings.read.operation)
        let control = await measureScaling(.identityCall, settings, nanoseconds: timings.read.anchor)
        let sequential = await measureSequentialTasks(settings.sequentialTasks)
        let live = measureLiveEntries(settings.liveTasks, rounds: settings.liveRounds)
        printMemory(sequential: sequential, live: live, scaling: scaling, control: control, settings)
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

    static func verdict(_ met: Bool) -> String { met ? "met" : "MISSED" }

    static func printTimings(_ t: Timings, _ settings: Settings) {
        print("Time per operation (ns/op; value: RequestState { x: Int, requestID: String, user: String? })")
        let rows: [(String, String, Timing, Double)] = [
            ("read local.x, .task, steady state, no scope", "identity call", t.read, 1.5),
            ("read local.x inside a scope", "@TaskLocal read + identity call", t.readInScope, 1.5),
            ("read local.x, .thread", "pthread_getspecific", t.threadRead, 3),
            ("write local.x = v, .task, steady state", "the same read (row 1)", t.write, 1.5),
            ("scope enter + exit: local.withValue(\\.x, v) {}", "TaskLocal.withValue enter + exit", t.scope, 3),
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
        print("    @TaskLocal read alone (bound)                       \(fixed(t.taskLocalRead.operation, 1)) ns/op")
        print("    loop + sink overhead, in every figure above         \(fixed(t.loopOverhead, 1)) ns/op")
    }

    // MARK: Allocation rows

    static func printAllocations(_ counts: AllocationCounts?) {
        let rows = AllocationCounts.rows.map { row -> [String] in
            guard let value = counts?.perOperation[row.name] else {
                return [row.label, "not counted", row.hasTarget ? "0" : "-", "-"]
            }
            return [
                row.label, fixed(value, 3), row.hasTarget ? "0" : "-",
                row.hasTarget ? verdict(value == 0) : "-",
            ]
        }
        printTable(["operation", "allocations/op", "target", "result"], rows)
    }

    // MARK: Memory rows

    static func printMemory(
        sequential: SequentialTasksResult?,
        live: LiveEntriesResult?,
        scaling: ScalingResult,
        control: ScalingResult,
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
        rows.append([
            "reads from 2 tasks at once vs 1: total throughput",
            fixed(scaling.ratio, 2) + "x", "≥ 1.7x", verdict(scaling.ratio >= 1.7),
        ])
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
        let one = fixed(scaling.oneTaskSeconds * 1000, 0)
        let two = fixed(scaling.twoTasksSeconds * 1000, 0)
        print(
            "  two tasks: \(grouped(scaling.readsPerTask)) reads per task; one task alone \(one) ms, two at once"
                + " \(two) ms (best of \(settings.runs))"
        )
        print(
            "  control: identity calls (nothing shared) from 2 tasks at once vs 1 scale \(fixed(control.ratio, 2))x"
                + (control.ratio < 1.7 ? ": the other core was busy, so the row above says little" : "")
        )
    }
}
