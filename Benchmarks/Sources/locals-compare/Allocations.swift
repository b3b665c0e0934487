// Heap allocations per steady-state operation, counted with package-benchmark's malloc interposer
// (ordo-one/malloc-interposer, the library behind its mallocCountTotal metric).
//
// Linking the interposer routes every malloc in the process through it, and it prefixes every
// block with a 16-byte header whether or not it is counting. That would skew the memory rows and
// slow every allocation the timing rows make. So the tool counts allocations first, in the
// process `swift run` started, then executes itself again with libc preloaded ahead of the
// interposer (`LD_PRELOAD=libc.so.6`: malloc then binds to glibc's own), and measures everything
// else in that clean process. The counts travel in an environment variable.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Locals
import LocalsBenchmarkSupport
import MallocInterposerSwift

/// Allocations per operation for each allocation row, by row name; nil where they could not be
/// counted.
struct AllocationCounts {
    static let rows: [(name: String, label: String, hasTarget: Bool)] = [
        ("read", "read local.x, .task, no scope", true),
        ("readInScope", "read local.x inside a scope", true),
        ("threadRead", "read local.x, .thread", true),
        ("write", "write local.x = v, .task", true),
        ("scope", "scope enter + exit (no target; for information)", false),
    ]

    var perOperation: [String: Double] = [:]

    /// Counts `body`'s allocations over `iterations` calls, after one untimed call.
    @inline(__always)
    static func count(_ iterations: Int, _ body: (Int) -> Void) -> Double {
        body(0)
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        for index in 0..<iterations {
            body(index)
        }
        MallocInterposerSwift.unhook()
        return Double(MallocInterposerSwift.getStatistics().mallocCount) / Double(iterations)
    }

    /// Counts in the running task (a task of the global pool, as a server's request would be).
    static func measure() -> AllocationCounts {
        let iterations = 100_000
        let local = taskLocal
        let perThread = threadLocal
        var counts = AllocationCounts()
        counts.perOperation["read"] = count(iterations) { _ in sink(local.x) }
        counts.perOperation["readInScope"] = local.withValue(\.x, 1) {
            count(iterations) { _ in sink(local.x) }
        }
        counts.perOperation["threadRead"] = count(iterations) { _ in sink(perThread.x) }
        counts.perOperation["write"] = count(iterations) { index in local.x = index }
        counts.perOperation["scope"] = count(iterations) { index in local.withValue(\.x, index) {} }
        return counts
    }

    /// Whether the interposer sees this process's allocations.
    static var interposerIsActive: Bool {
        MallocInterposerSwift.initialize()
        MallocInterposerSwift.hook()
        let block = malloc(64)
        sink(block)
        free(block)
        MallocInterposerSwift.unhook()
        return MallocInterposerSwift.getStatistics().mallocCount > 0
    }

    static let environmentKey = "LOCALS_COMPARE_ALLOCATIONS"

    var encoded: String {
        Self.rows.compactMap { row in perOperation[row.name].map { "\(row.name)=\($0)" } }
            .joined(separator: ",")
    }

    init() {}

    init?(decoding text: String) {
        for pair in text.split(separator: ",") {
            let parts = pair.split(separator: "=")
            guard parts.count == 2, let value = Double(parts[1]) else { return nil }
            perOperation[String(parts[0])] = value
        }
    }
}

enum CleanProcess {
    static let stageKey = "LOCALS_COMPARE_STAGE"

    /// Whether this process is the re-executed one.
    static var isReexecuted: Bool { getenv(stageKey) != nil }

    /// Replaces this process with a fresh run of the same executable and arguments, with libc
    /// preloaded ahead of the malloc interposer and `counts` passed along. Returns only if that
    /// is not possible here.
    static func reexecute(passing counts: AllocationCounts) {
        #if os(Linux)
        let previous = getenv("LD_PRELOAD").map { String(cString: $0) }
        let preload = ["libc.so.6", previous].compactMap { $0 }.filter { !$0.isEmpty }.joined(separator: ":")
        setenv("LD_PRELOAD", preload, 1)
        setenv(stageKey, "clean", 1)
        setenv(AllocationCounts.environmentKey, counts.encoded, 1)
        fflush(nil)
        execv("/proc/self/exe", CommandLine.unsafeArgv)
        // Still here: execv failed. Carry on in this process, interposer and all.
        if let previous {
            setenv("LD_PRELOAD", previous, 1)
        } else {
            unsetenv("LD_PRELOAD")
        }
        #endif
    }
}
