// Randomized model-based checking: random programs (Program.swift, Generator.swift) run against
// the library with real tasks, every read compared with the reference model (Model.swift, and
// ModelSnapshots.swift for `LocalsSnapshot`).
//
// Each program is a list of steps, each taken by one task, in one global order. Real tasks
// (created by every path: `Task {}`, `Task.immediate`, `async let`, the four task groups,
// `Task.detached`) and plain threads run their steps, and a conductor hands the turn from step
// to step (continuations for tasks, semaphores for threads), so every step runs in the order the
// model replays it: nothing is left to timing.
//
// Environment:
// - LOCALS_MODEL_PROGRAMS: programs per run (default 5,000; 2,000 under Thread or Address
//   Sanitizer, which make everything 4-5x slower).
// - LOCALS_MODEL_SEED: the first program's seed (decimal or 0x-hex; `random` for a new one).
//   Program i uses seed + i; a failure prints the seed that reproduces it alone.
// - LOCALS_MODEL_TRACE=1: print each program's seed to standard error before it runs, so that a
//   program that stops the process (a trap in the library) can be named and run alone.

import Foundation
import Locals

// MARK: - Configuration

struct ModelCheckConfig {
    static let defaultSeed: UInt64 = 0x10CA_1500_0006
    static let defaultPrograms = 5_000
    static let defaultProgramsUnderSanitizers = 2_000

    var programs: Int
    var seed: UInt64
    var trace = false

    static func fromEnvironment() -> ModelCheckConfig {
        let environment = ProcessInfo.processInfo.environment
        let sanitized = runningUnderThreadSanitizer || runningUnderAddressSanitizer
        let fallback = sanitized ? defaultProgramsUnderSanitizers : defaultPrograms
        let programs = environment["LOCALS_MODEL_PROGRAMS"].flatMap { Int($0) } ?? fallback
        var seed = defaultSeed
        if let text = environment["LOCALS_MODEL_SEED"]?.lowercased() {
            if text == "random" {
                seed = UInt64.random(in: 0...UInt64.max)
            } else if text.hasPrefix("0x"), let value = UInt64(text.dropFirst(2), radix: 16) {
                seed = value
            } else if let value = UInt64(text) {
                seed = value
            }
        }
        let trace = environment["LOCALS_MODEL_TRACE"].map { !["", "0"].contains($0) } ?? false
        return ModelCheckConfig(programs: max(programs, 0), seed: seed, trace: trace)
    }
}

/// The result of running one program against the library.
struct ModelOutcome {
    struct Mismatch {
        var step: Int
        var expected: [ModelPart]
        var actual: [ModelPart]?
    }

    var mismatches: [Mismatch] = []
    /// The step the program was stuck at, if it hung.
    var hungAt: Int?
    /// Each Local's initializer calls, where they were not as many as the model allows.
    var initializerCalls: (expected: [ClosedRange<Int>], actual: [Int])?
    var reads = 0
    /// Snapshot runs, and the reads inside them (also counted in `reads`).
    var runs = 0
    var readsInRuns = 0

    var failed: Bool { !mismatches.isEmpty || hungAt != nil || initializerCalls != nil }

    /// What went wrong beyond single steps.
    var summary: String {
        guard let initializerCalls else { return "" }
        let each = initializerCalls.actual.indices.map { local in
            let range = initializerCalls.expected[local]
            let allowed = range.count == 1 ? "\(range.lowerBound)" : "\(range.lowerBound) to \(range.upperBound)"
            return "L\(local) \(initializerCalls.actual[local]) (the model allows \(allowed))"
        }
        return "MISMATCH: initializer calls: " + each.joined(separator: ", ") + "\n"
    }

    /// Notes for `ModelProgram.listing`.
    var notes: [Int: String] {
        var notes: [Int: String] = [:]
        for mismatch in mismatches {
            let actual = mismatch.actual.map { "\($0)" } ?? "nothing (step did not run)"
            notes[mismatch.step] = "MISMATCH: model expects \(mismatch.expected), library gave \(actual)"
        }
        if let hungAt { notes[hungAt, default: ""] += " HUNG here" }
        return notes
    }
}

enum ModelCheck {
    /// Bounds a hang (a bug) only; a program normally runs in milliseconds.
    static let hangTimeout: Duration = .seconds(30)

    /// Runs `program` with real tasks and compares every observation with the model's.
    static func execute(
        _ program: ModelProgram, unknown: ModelContext.UnknownKeys, pool: ModelLocalPool? = nil
    ) async -> ModelOutcome {
        guard case .success(let expectation) = ModelState.expectation(program) else {
            preconditionFailure("execute needs a well-formed program")
        }
        let expected = expectation.observed
        let context = ModelContext(program: program, expected: expected, unknown: unknown, pool: pool)
        let callsBefore = context.initializerCalls.map(\.count)
        let done = Signal()
        let root = Task.detached {
            await ModelRunner(id: ModelState.rootTask, context: context).run()
            done.fire()
        }
        let timer = Task {
            try? await Task.sleep(for: hangTimeout)
            done.fire()
        }
        await done.wait()
        timer.cancel()
        var outcome = ModelOutcome()
        if !context.conductor.isFinished(ModelState.rootTask) {
            outcome.hungAt = context.conductor.position
            context.conductor.abort()
            await root.value
        }
        let calls = zip(context.initializerCalls, callsBefore).map { $0.count - $1 }
        let allowed = expectation.initializerCalls
        if outcome.hungAt == nil, calls.indices.contains(where: { !allowed[$0].contains(calls[$0]) }) {
            outcome.initializerCalls = (expected: expectation.initializerCalls, actual: calls)
        }
        let observed = context.observations
        for (step, parts) in expected.enumerated() where !parts.isEmpty || observed[step] != nil {
            outcome.reads += parts.count
            if case .run = program.steps[step].action {
                outcome.runs += 1
                outcome.readsInRuns += parts.count
            }
            if observed[step] != parts {
                outcome.mismatches.append(.init(step: step, expected: parts, actual: observed[step]))
            }
        }
        return outcome
    }

    /// Whether `program` fails in any of `attempts` runs (a failure may depend on thread timing).
    static func fails(
        _ program: ModelProgram, unknown: ModelContext.UnknownKeys, pool: ModelLocalPool?, attempts: Int
    ) async -> ModelOutcome? {
        for _ in 0..<attempts {
            let outcome = await execute(program, unknown: unknown, pool: pool)
            if outcome.failed { return outcome }
        }
        return nil
    }

    /// Shrinks a failing program: keeps the smallest well-formed variant that still fails.
    static func shrink(
        _ program: ModelProgram, _ outcome: ModelOutcome, maxRuns: Int = 1_500,
        fails: (ModelProgram) async -> ModelOutcome?
    ) async -> (ModelProgram, ModelOutcome, runs: Int) {
        var current = (program, outcome)
        var runs = 0
        var improved = true
        while improved, runs < maxRuns {
            improved = false
            for candidate in current.0.shrinkCandidates() {
                let smaller = candidate.steps.count < current.0.steps.count
                let simpler = candidate.steps.count == current.0.steps.count && candidate != current.0
                guard smaller || simpler, case .success = ModelState.simulate(candidate)
                else { continue }
                runs += 1
                if let failure = await fails(candidate) {
                    current = (candidate, failure)
                    improved = true
                    break
                }
                if runs >= maxRuns { break }
            }
        }
        return (current.0, current.1, runs)
    }
}
