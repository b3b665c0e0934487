// A tiny loop of `local.x` reads for `valgrind --tool=callgrind`, which counts instructions (the
// same count whatever else the machine does), so that the cost of one read can be taken apart:
//
//     swift build -c release --package-path Benchmarks --product locals-profile
//     valgrind --tool=callgrind --callgrind-out-file=/tmp/locals.callgrind \
//         Benchmarks/.build/release/locals-profile [operations] [MODE] [LOCALS]
//     callgrind_annotate --inclusive=yes /tmp/locals.callgrind | head -40
//
// MODE is what the loop does: `task` (the default: `local.x` of a `.task` Local, no scope), `scope`
// (the same inside `local.withValue`), `thread` (a `.thread` Local), `write` (`local.x = i`),
// `scopes` (a scope entered and left: `local.withValue(\.x, i) {}`), `threadscopes` and
// `sessionscopes` (the same for a `.thread` Local and for a session), or an anchor: `identity` (the
// identity call), `tasklocal` (a bound `@TaskLocal` read), `tasklocalscopes` (`@TaskLocal`'s
// `withValue(i) {}`, the anchor of `scopes`); or, with LOCALS Locals (a third argument, 10 if
// none) that each hold a value of the task's own, `capture` (`LocalsSnapshot.capture()`) or `run`
// (`snapshot.run {}` with an empty body); `scopedcapture` and `scopedrun` do the same with each of
// the LOCALS Locals in a scope of its own instead, as the snapshot rows of `locals-compare` have
// them (a fourth argument, `thread`, `session` or `both`, first gives the thread a `.thread` value
// or makes a session, as a full `locals-compare` run has them when it reaches the snapshot rows;
// `carried` first registers a task-local for snapshots to carry);
// `runread` runs a snapshot of one scope of 10 Locals with one read inside.
//
// Divide a function's inclusive count by the number of operations for its share of one; run
// with 0 operations to see what starting the process costs.
//
// valgrind 3.19 gives up on the DWARF 5 debug information Swift 6.3 emits ("unhandled dwarf2
// abbrev form code 0x25"): run it on a copy without it, made with
// `cp Benchmarks/.build/release/locals-profile /tmp/lp && strip --strip-debug /tmp/lp` (the
// symbols stay). `perf record -g` works on the binary as built.
//
// `main` is synchronous and waits on a semaphore: valgrind 3.19 crashes on an `async` main,
// whose main thread parks in libdispatch's `dispatch_main`.

import Dispatch
import Locals
import LocalsBenchmarkSupport

@main
struct LocalsProfile {
    static func main() {
        let arguments = CommandLine.arguments.dropFirst()
        let operations = arguments.first.flatMap { Int($0) } ?? 100_000
        let mode = arguments.dropFirst().first ?? "task"
        let done = DispatchSemaphore(value: 0)
        Task.detached {
            run(mode, operations, arguments.dropFirst(2))
            done.signal()
        }
        done.wait()
        print("\(mode): \(operations) operations")
    }

    /// Runs one mode. Each loop is in a function of its own: in one function with all of them,
    /// how much the compiler inlines at one mode's call sites (a Local's read, its write) would
    /// depend on how much code the other modes have.
    static func run(_ mode: String, _ operations: Int, _ more: ArraySlice<String>) {
        switch mode {
        case "scope": readInScope(operations)
        case "thread": readThread(operations)
        case "write": write(operations)
        case "scopes": scopes(operations)
        case "threadscopes": threadScopes(operations)
        case "sessionscopes": sessionScopes(operations)
        case "tasklocalscopes": taskLocalScopes(operations)
        case "identity": identity(operations)
        case "tasklocal": taskLocalRead(operations)
        case "runread": runAndRead(operations)
        case "scopedcapture", "scopedrun": scopedSnapshots(mode, operations, more)
        case "capture", "run": ownValueSnapshots(mode, operations, more)
        default: readTask(operations)
        }
    }

    @inline(never)
    static func readTask(_ operations: Int) {
        let local = taskLocal
        for _ in 0..<operations { sink(local.x) }
    }

    @inline(never)
    static func readInScope(_ operations: Int) {
        let local = taskLocal
        local.withValue(\.x, 1) {
            for _ in 0..<operations { sink(local.x) }
        }
    }

    @inline(never)
    static func readThread(_ operations: Int) {
        let perThread = threadLocal
        for _ in 0..<operations { sink(perThread.x) }
    }

    @inline(never)
    static func write(_ operations: Int) {
        let local = taskLocal
        for index in 0..<operations { local.x = index }
    }

    @inline(never)
    static func scopes(_ operations: Int) {
        let local = taskLocal
        for index in 0..<operations { local.withValue(\.x, index) {} }
    }

    @inline(never)
    static func threadScopes(_ operations: Int) {
        let perThread = threadLocal
        for index in 0..<operations { perThread.withValue(\.x, index) {} }
    }

    @inline(never)
    static func sessionScopes(_ operations: Int) {
        SessionDiscriminator.$sessionID.withValue(sessionIDs[0]) {
            for index in 0..<operations { sessionLocal.withValue(\.x, index) {} }
        }
    }

    @inline(never)
    static func taskLocalScopes(_ operations: Int) {
        for index in 0..<operations { Anchor.$value.withValue(index) {} }
    }

    @inline(never)
    static func identity(_ operations: Int) {
        for _ in 0..<operations { sink(withUnsafeCurrentTask { unsafeBitCast($0, to: Int.self) }) }
    }

    @inline(never)
    static func taskLocalRead(_ operations: Int) {
        Anchor.$value.withValue(1) {
            for _ in 0..<operations { sink(Anchor.value) }
        }
    }

    @inline(never)
    static func runAndRead(_ operations: Int) {
        let locals = (0..<10).map { _ in Local { RequestState() } }
        var snapshot = LocalsSnapshot()
        locals[0].withValue(\.x, 1) { snapshot = LocalsSnapshot.capture() }
        let first = locals[0]
        for _ in 0..<operations { snapshot.run { sink(first.x) } }
        withExtendedLifetime(locals) {}
    }

    /// LOCALS Locals each in a scope of its own, as the benchmark's snapshot rows have them:
    /// capture inside, or run (in the same task, after the scopes close).
    @inline(never)
    static func scopedSnapshots(_ mode: String, _ operations: Int, _ more: ArraySlice<String>) {
        let count = more.first.flatMap { Int($0) } ?? 10
        let locals = (0..<count).map { _ in Local { RequestState() } }
        var snapshot = LocalsSnapshot()
        if more.dropFirst().first == "thread" || more.dropFirst().first == "both" {
            threadLocal.x = 1  // a value of the thread's own, which every capture on it copies
        }
        if more.dropFirst().first == "carried" {
            _ = CarriedSessionDiscriminator()  // registers a task-local that every capture reads
        }
        if more.dropFirst().first == "session" || more.dropFirst().first == "both" {
            // A session Local alive (as in the full benchmark), whose discriminator each
            // capture asks for its current key: none here.
            SessionDiscriminator.$sessionID.withValue(sessionIDs[0]) { sessionLocal.x = 1 }
        }
        withScopes(locals[...]) {
            if mode == "scopedcapture" {
                for _ in 0..<operations { sink(LocalsSnapshot.capture()) }
            }
            snapshot = LocalsSnapshot.capture()
        }
        if mode == "scopedrun" {
            for _ in 0..<operations { snapshot.run {} }
        }
        withExtendedLifetime(locals) {}
    }

    @inline(never)
    static func ownValueSnapshots(_ mode: String, _ operations: Int, _ more: ArraySlice<String>) {
        let count = more.first.flatMap { Int($0) } ?? 10
        let locals = (0..<count).map { _ in Local { RequestState() } }
        for (index, local) in locals.enumerated() { local.x = index }
        if mode == "capture" {
            for _ in 0..<operations { sink(LocalsSnapshot.capture()) }
        } else {
            let snapshot = LocalsSnapshot.capture()
            for _ in 0..<operations { snapshot.run {} }
        }
        withExtendedLifetime(locals) {}
    }

    /// Runs `body` inside a scope of every Local of `locals`, nested, each with its own value.
    static func withScopes(_ locals: ArraySlice<Local<RequestState>>, _ body: () -> Void) {
        guard let first = locals.first else { return body() }
        first.withValue(\.x, locals.startIndex) { withScopes(locals.dropFirst(), body) }
    }
}
