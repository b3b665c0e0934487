// The model check's tests: random programs agree with the model; the model itself gives the
// table of what a child sees under each policy; the generator and the shrinker do their jobs.

import Foundation
import Locals
import Testing

@Suite("Model check: random programs against a reference model of the documented semantics")
struct ModelCheckTests {
    @Test("random programs over one or two Locals, every policy and way to create a child, agree with the model")
    func randomPrograms() async {
        let config = ModelCheckConfig.fromEnvironment()
        let unknown = await ModelContext.UnknownKeys.make()
        // Odd programs use Locals shared by the whole run; even ones, new Locals.
        let pool = ModelLocalPool()
        let clock = ContinuousClock()
        let start = clock.now
        var steps = 0
        var reads = 0
        var runs = 0
        var readsInRuns = 0
        for index in 0..<config.programs {
            let seed = config.seed &+ UInt64(index)
            let program = ModelGenerator.program(seed: seed)
            let shared = index % 2 == 1 ? pool : nil
            if config.trace {
                FileHandle.standardError.write(Data("ModelCheck: program \(index), seed \(seed)\n".utf8))
            }
            let outcome = await ModelCheck.execute(program, unknown: unknown, pool: shared)
            steps += program.steps.count
            reads += outcome.reads
            runs += outcome.runs
            readsInRuns += outcome.readsInRuns
            guard outcome.failed else { continue }
            let (shrunk, shrunkOutcome, runs) = await ModelCheck.shrink(program, outcome) {
                await ModelCheck.fails($0, unknown: unknown, pool: shared, attempts: 3)
            }
            let locals = shared == nil
                ? "new Locals"
                : "Locals shared with the earlier programs of the run (it may take the whole run to reproduce)"
            Issue.record(
                """
                Model check failed: program \(index) of the run with LOCALS_MODEL_SEED=\(config.seed), on \(locals).
                Reproduce it alone:
                LOCALS_MODEL_SEED=\(seed) LOCALS_MODEL_PROGRAMS=1 swift test --filter ModelCheckTests
                Original: \(program.steps.count) steps. Shrunk (\(runs) runs): \(shrunk.steps.count) steps:
                \(shrunkOutcome.summary)\(shrunk.listing(notes: shrunkOutcome.notes))
                """
            )
            return
        }
        let elapsed = clock.now - start
        print(
            "ModelCheck: \(config.programs) programs, \(steps) steps, \(reads) reads checked against the model "
                + "(\(readsInRuns) of them in \(runs) snapshot runs); "
                + "LOCALS_MODEL_SEED=\(config.seed); "
                + elapsed.formatted(.units(allowed: [.seconds], fractionalPart: .show(length: 1)))
        )
    }

    @Test("the model gives the table of what a child sees under each policy, for every way to create a child",
          arguments: Inheritance.all)
    func modelMatchesInheritanceTable(policy: Inheritance) throws {
        // The table's scenario as a program: the owner opens withValues, creates a child, the child
        // reads `a` (simple), the owner sets `b` (late), the child reads `b`, writes `a` and
        // `list[1]`, the owner awaits the child and reads.
        for kind in ModelSpawn.all where kind != .detached && kind != .thread {
            let steps: [ModelStep] = [
                .init(task: 0, action: .open(ModelScope(
                    local: 0,
                    style: .withValues([.init(field: .a, part: .string("from parent")),
                                        .init(field: .list, part: .list(["from", "parent"]))]),
                    inheritance: nil))),
                .init(task: 0, action: .spawn(child: 1, kind: kind)),
                .init(task: 1, action: .read(local: 0, field: .a)),
                .init(task: 0, action: .write(local: 0, field: .b, part: .string("after spawn"), style: .property)),
                .init(task: 1, action: .read(local: 0, field: .b)),
                .init(task: 1, action: .write(local: 0, field: .a, part: .string("from child"), style: .property)),
                .init(task: 1, action: .write(local: 0, field: .element, part: .string("child"), style: .property)),
                .init(task: 1, action: .end),
                .init(task: 0, action: .awaitChild(1)),
                .init(task: 0, action: .read(local: 0, field: .a)),
                .init(task: 0, action: .read(local: 0, field: .list)),
                .init(task: 0, action: .close),
                .init(task: 0, action: .end),
            ]
            let observed = try ModelState.simulate(ModelProgram(policies: [policy], steps: steps)).get()
            // The model's initial strings are "i"; the table's are `Sample.initial`.
            func text(_ part: ModelPart) -> String { part.string == "i" ? Sample.initial : part.string }
            let row = TableRow(
                childFirstSimple: text(observed[2][0]),
                childLate: text(observed[4][0]),
                ownerSimpleAfter: text(observed[9][0]),
                ownerListAfter: observed[10][0].list
            )
            let expected = TableRow.expected(policy)
            #expect(row == expected, "\(kind)")
        }
    }

    @Test("a seed names one program; every generated program is well formed")
    func generatorIsDeterministic() throws {
        for seed in UInt64(0)..<300 {
            let program = ModelGenerator.program(seed: seed)
            #expect(program == ModelGenerator.program(seed: seed))
            _ = try ModelState.simulate(program).get()
        }
    }

    @Test("shrinking keeps a failure and cuts what does not matter")
    func shrinkerShrinks() async throws {
        // A stand-in failure: some task writes L0 through `update` inside a scope it opened.
        func fails(_ program: ModelProgram) -> Bool {
            var depth: [Int: Int] = [:]
            for step in program.steps {
                switch step.action {
                case .open: depth[step.task, default: 0] += 1
                case .close: depth[step.task, default: 0] -= 1
                case .throwOut(let levels): depth[step.task, default: 0] -= levels
                case .write(0, _, _, .update) where depth[step.task, default: 0] > 0: return true
                default: break
                }
            }
            return false
        }
        let shrunk = try await Self.shrinkStandIn(fails)
        // At best 4 steps (open, update, close, end in one task); the write may stay in a child.
        #expect(shrunk.steps.count <= 8, "\(shrunk.listing())")
    }

    @Test("shrinking keeps a snapshot's capture and run, and cuts the rest and the run's body")
    func shrinkerShrinksSnapshots() async throws {
        // A stand-in failure: a task reads L0 inside a run of a snapshot another task took.
        func fails(_ program: ModelProgram) -> Bool {
            var takenBy: [Int: Int] = [:]
            for step in program.steps {
                switch step.action {
                case .capture(let slot):
                    takenBy[slot] = step.task
                case .run(let slot, _, let ops):
                    let reads = ops.contains { if case .read(0, _) = $0 { true } else { false } }
                    if reads, let taker = takenBy[slot], taker != step.task { return true }
                default:
                    break
                }
            }
            return false
        }
        let shrunk = try await Self.shrinkStandIn(fails)
        // At best 5 steps: capture, spawn, the run (with only the read left in it), end, end.
        #expect(shrunk.steps.count <= 8, "\(shrunk.listing())")
        for step in shrunk.steps {
            if case .run(_, let async, let ops) = step.action {
                #expect(ops.count == 1 && !async, "\(shrunk.listing())")
            }
        }
    }

    /// Shrinks the first generated program of at least 30 steps for which the stand-in failure
    /// `fails` holds, and checks that the shrunk program still fails and is a valid program.
    static func shrinkStandIn(_ fails: @escaping (ModelProgram) -> Bool) async throws -> ModelProgram {
        var seed: UInt64 = 1
        var program = ModelGenerator.program(seed: seed)
        while !fails(program) || program.steps.count < 30 {
            seed += 1
            program = ModelGenerator.program(seed: seed)
        }
        let (shrunk, _, _) = await ModelCheck.shrink(program, ModelOutcome(hungAt: 0)) { candidate in
            fails(candidate) ? ModelOutcome(hungAt: 0) : nil
        }
        #expect(fails(shrunk))
        _ = try ModelState.simulate(shrunk).get()
        return shrunk
    }
}
