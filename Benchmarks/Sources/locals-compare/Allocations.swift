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
        ("copyChildRead", "child's read in a .copy scope", true),
        ("freshChildRead", "child's read in a .fresh scope", true),
        ("overlayChildRead", "child's read in an .overlay scope (wrote .user)", true),
        ("sharedChildRead", "child's read in a .shared scope", true),
        ("asyncLetCopyChildRead", "async let child's read in a .copy scope", true),
        ("sessionRead", "read, custom discriminator (session)", true),
        ("sessionWrite", "write, custom discriminator (session)", true),
        ("copyChildWrite", "child's write in a .copy scope (no target; for information)", false),
        ("freshChildWrite", "child's write in a .fresh scope (no target; for information)", false),
        ("overlayChildWrite", "child's write in an .overlay scope (no target; for information)", false),
        ("sharedChildWrite", "child's write in a .shared scope (no target; for information)", false),
    ]

    var perOperation: [String: Double] = [:]

    /// Counts `body`'s allocations per call over `iterations` calls, after one uncounted call.
    ///
    /// The interposer counts every thread's allocations, and once in a while a thread of the
    /// runtime allocates while a row is being counted (one block in 100,000 operations). So each
    /// row is counted twice and the smaller count is kept: an allocation the operation makes
    /// shows in both.
    @inline(__always)
    static func count(_ iterations: Int, _ body: (Int) -> Void) -> Double {
        body(0)
        var fewest = Int.max
        for _ in 0..<2 {
            MallocInterposerSwift.initialize()
            MallocInterposerSwift.hook()
            for index in 0..<iterations {
                body(index)
            }
            MallocInterposerSwift.unhook()
            fewest = min(fewest, MallocInterposerSwift.getStatistics().mallocCount)
        }
        return Double(fewest) / Double(iterations)
    }

    /// Counts in the running task (a task of the global pool, as a server's request would be), and
    /// the child rows in a child it creates inside a scope of each policy, counting in the child
    /// after its first touch (the task that opened the scope waits meanwhile, allocating nothing).
    static func measure() async -> AllocationCounts {
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

        for policy in [Inheritance.copy, .fresh, .overlay, .shared] {
            let reads = await local.withValues({ $0.x = 1 }, inheritance: policy) {
                await inChild {
                    if policy == .overlay {
                        local.user = "child"  // the child's own layer holds one other field
                    }
                    return count(iterations) { _ in sink(local.x) }
                }
            }
            counts.perOperation["\(policy)ChildRead"] = reads
            let writes = await local.withValues({ $0.x = 1 }, inheritance: policy) {
                await inChild { count(iterations) { index in local.x = index } }
            }
            counts.perOperation["\(policy)ChildWrite"] = writes
        }

        counts.perOperation["asyncLetCopyChildRead"] = await local.withValues({ $0.x = 1 }, inheritance: .copy) {
            await inAsyncLetChild { count(iterations) { _ in sink(local.x) } }
        }

        let sessions = sessionLocal
        SessionDiscriminator.$sessionID.withValue(sessionIDs[0]) {
            counts.perOperation["sessionRead"] = count(iterations) { _ in sink(sessions.x) }
            counts.perOperation["sessionWrite"] = count(iterations) { index in sessions.x = index }
        }
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
