import Foundation
import Locals
import Testing

/// Random programs of nested synchronous runs, scopes (every policy), captures inside runs and
/// runs of them, resets, discards of the task's own key, `update`, writes that freeze `.overlay`
/// children, and child tasks created anywhere, on one task. Judged only by the process ending
/// normally (run it under Address Sanitizer) and by each program's reads after everything closed
/// being the task's own values. Seeds: `LOCALS_FUZZ_SEED` (the first, 1 if unset) and
/// `LOCALS_FUZZ_PROGRAMS` (how many, 300 if unset); `LOCALS_FUZZ_LOG` prints each program's steps,
/// `LOCALS_FUZZ_TRACE` each seed. A failing seed reproduces alone:
/// `LOCALS_FUZZ_SEED=253 LOCALS_FUZZ_PROGRAMS=1 swift test --filter NestedRunFuzzTests`.
@Suite("Nested synchronous runs, fuzzed")
struct NestedRunFuzzTests {
    final class Program: @unchecked Sendable {
        var rng: ModelRandom
        let locals: [Local<RunPair>]
        var snapshots: [LocalsSnapshot] = [LocalsSnapshot()]
        var children: [Task<Void, Never>] = []
        var steps = 0
        let noDiscards = ProcessInfo.processInfo.environment["LOCALS_FUZZ_NO_DISCARDS"] != nil
        let log = ProcessInfo.processInfo.environment["LOCALS_FUZZ_LOG"] != nil
        func note(_ depth: Int, _ text: String) {
            if log { FileHandle.standardError.write("\(String(repeating: "  ", count: depth))\(text)\n".data(using: .utf8)!) }
        }
        init(seed: UInt64, locals: [Local<RunPair>]) {
            rng = ModelRandom(seed: seed)
            self.locals = locals
        }

        func body(_ depth: Int) {
            let count = 1 + rng.below(5)
            for _ in 0..<count {
                steps += 1
                if steps > 60 { return }
                let which = rng.below(locals.count)
                let local = locals[which]
                let name = ["copy", "shared", "overlay", "fresh"][which]
                let policies: [Inheritance] = [.copy, .fresh, .shared, .overlay]
                switch rng.below(depth >= 4 ? 9 : 12) {
                case 0: note(depth, "read \(name) -> \(local.value)")
                case 1: let v = rng.below(100); note(depth, "\(name).a = \(v)"); local.a = v
                case 2: let v = RunPair(a: rng.below(100), b: rng.below(100)); note(depth, "\(name).value = \(v)"); local.value = v  // freezes an .overlay child
                case 3: note(depth, "\(name).reset()"); local.reset()
                case 4 where noDiscards: note(depth, "read \(name) -> \(local.value)")
                case 4: note(depth, "\(name).discard(own)"); local.discard(key: TaskID.current!)
                case 5: note(depth, "\(name).update b+=1"); local.update { $0.b += 1 }
                case 6: note(depth, "capture #\(snapshots.count)"); snapshots.append(LocalsSnapshot.capture())
                case 7:
                    note(depth, "spawn child")
                    let locals = self.locals
                    children.append(Task { for local in locals { _ = local.value; local.b = 3 } })
                case 8: note(depth, "read \(name).b -> \(local.b)")
                case 9, 10:
                    let policy = policies[rng.below(policies.count)]
                    let v = rng.below(100)
                    note(depth, "\(name).withValue(a: \(v), .\(policy)) {")
                    local.withValue(\.a, v, inheritance: policy) { body(depth + 1) }
                    note(depth, "}")
                default:
                    let index = rng.below(snapshots.count)
                    let snapshot = snapshots[index]
                    note(depth, "run #\(index) {")
                    snapshot.run { body(depth + 1) }
                    note(depth, "}")
                }
            }
        }
    }

    /// An `async` layer over the same programs: `async` runs and scopes around synchronous bodies,
    /// with suspensions (the task may resume on another thread).
    static func asyncBody(_ program: Program, _ depth: Int) async {
        let count = 1 + program.rng.below(4)
        for _ in 0..<count {
            program.steps += 1
            if program.steps > 80 { return }
            switch program.rng.below(depth >= 3 ? 3 : 6) {
            case 0: program.body(depth)
            case 1: await Task.yield()
            case 2: program.snapshots.append(LocalsSnapshot.capture())
            case 3, 4:
                let index = program.rng.below(program.snapshots.count)
                program.note(depth, "await run #\(index) {")
                await program.snapshots[index].run { await asyncBody(program, depth + 1) }
                program.note(depth, "}")
            default:
                let which = program.rng.below(program.locals.count)
                let policies: [Inheritance] = [.copy, .fresh, .shared, .overlay]
                let policy = policies[program.rng.below(policies.count)]
                program.note(depth, "await local\(which).withValue(.\(policy)) {")
                await program.locals[which].withValue(\.a, 60, inheritance: policy) { await asyncBody(program, depth + 1) }
                program.note(depth, "}")
            }
        }
    }

    @Test("async runs and scopes around nested synchronous runs")
    func fuzzAsyncRuns() async {
        await Self.forEachProgram { program in
            await LocalsSnapshot().run { await Self.asyncBody(program, 0) }
        } check: { _, _, _ in
            // An async run shows a Local its snapshot holds nothing of as the task has it: writes
            // there are the task's own, and stay. Only crashes (and the sanitizers) judge here.
        }
    }

    /// With `withParts`, the programs may also run snapshots of `.overlay` children with writes
    /// of their own, which a run puts in place at its start (parts) rather than lazily (views).
    @Test("nested synchronous runs, scopes, captures, discards", arguments: [false, true])
    func fuzzNestedRuns(withParts: Bool) async {
        await Self.forEachProgram { program in
            if withParts {
                // Snapshots of .overlay children with writes of their own: parts, not views.
                for local in program.locals {
                    let taken = await local.withValue(\.a, 70, inheritance: .overlay) {
                        await Task { () -> LocalsSnapshot in
                            local.b = 71
                            return LocalsSnapshot.capture()
                        }.value
                    }
                    program.snapshots.append(taken)
                }
            }
            LocalsSnapshot().run { program.body(0) }
        } check: { seed, before, after in
            // The whole program ran inside a run: nothing of it may stay in the task's values, but
            // a discard of the task's own key drops its value (the initial value then).
            if zip(before, after).contains(where: { $0 != $1 && $1 != RunPair() }) {
                Issue.record("seed \(seed): \(before) became \(after)")
            }
        }
    }

    /// Runs `run` for each program of the seeds chosen (see above), in a task of its own that gave
    /// each of four Locals (one per policy) a value of its own first; `check` gets the task's
    /// values before and after (read again after freed memory was reused).
    static func forEachProgram(
        _ run: @escaping @Sendable (Program) async -> Void,
        check: (UInt64, [RunPair], [RunPair]) -> Void
    ) async {
        let env = ProcessInfo.processInfo.environment
        let first = UInt64(env["LOCALS_FUZZ_SEED"] ?? "") ?? 1
        let programs = UInt64(env["LOCALS_FUZZ_PROGRAMS"] ?? "") ?? 300
        let policies: [Inheritance] = [.copy, .shared, .overlay, .fresh]
        for seed in first..<(first + programs) {
            if env["LOCALS_FUZZ_TRACE"] != nil { FileHandle.standardError.write("fuzz seed \(seed)\n".data(using: .utf8)!) }
            let locals = policies.map { policy in Local<RunPair>(inheritance: policy) { RunPair() } }
            let (before, after) = await Task { () -> ([RunPair], [RunPair]) in
                for (index, local) in locals.enumerated() { local.value = RunPair(a: index, b: index) }
                let before = locals.map(\.value)
                let program = Program(seed: seed, locals: locals)
                await run(program)
                RunViewRemovalTests.reuseFreedMemory()
                let after = locals.map(\.value)
                for child in program.children { await child.value }
                return (before, after)
            }.value
            check(seed, before, after)
        }
    }
}

extension ModelRandom {
    /// A number in `0..<n`, as the fuzz test's programs were first generated with.
    mutating func below(_ n: Int) -> Int { Int(next() % UInt64(n)) }
}
