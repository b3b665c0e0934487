import Foundation
import Locals
import Testing

// Where the running task has no record (run with
// LOCALS_FORCE_FALLBACK=taskEnd,taskLocalPush in a debug build), a capture takes the .task Locals
// from a list kept between changes. A Local made after a capture must be in the next one; one
// released must not keep anything alive or break captures; changes racing with captures on other
// threads must not lose a Local. Without the fallback the tests pass too (the record lists them).

private final class LLTracked: Sendable {
    let id: Int
    let gone: Protected<Set<Int>>
    init(_ id: Int, _ gone: Protected<Set<Int>>) { self.id = id; self.gone = gone }
    deinit { gone.withLock { _ = $0.insert(id) } }
}

@Suite("The kept list of .task Locals for captures without a task record")
struct LiveLocalsFallbackListTests {
    @Test("a Local made after a capture is in the next capture; a released one is not kept")
    func addAfterCaptureAndRelease() async {
        let gone = Protected<Set<Int>>([])
        let results = await Task.detached { () -> [Int] in
            var results: [Int] = []
            let first = Local { -1 }
            first.value = 1
            _ = LocalsSnapshot.capture()  // lists the .task Locals now
            let second = Local { -1 }  // a change after the list was made
            second.value = 2
            let snapshot = LocalsSnapshot.capture()
            let third = Local { -1 }
            third.value = 3
            let later = LocalsSnapshot.capture()
            results += await Task.detached {
                var seen: [Int] = []
                snapshot.run { seen += [first.value, second.value, third.value] }
                later.run { seen += [first.value, second.value, third.value] }
                return seen
            }.value
            // A Local released after a capture listed it: a value of it is released, and captures go on.
            do {
                let doomed = Local<LLTracked?> { nil }
                doomed.value = LLTracked(1, gone)
                _ = LocalsSnapshot.capture()
                doomed.reset()
            }
            let after = LocalsSnapshot.capture()
            results += await Task.detached {
                var seen: [Int] = []
                after.run { seen += [first.value, second.value, third.value] }
                return seen
            }.value
            return results
        }.value
        #expect(results == [1, 2, -1, 1, 2, 3, 1, 2, 3])
        #expect(gone.withLock { $0 } == [1])
    }

    @Test("Locals made and released on other threads while tasks capture")
    func churnWhileCapturing() async {
        let stop = Protected(false)
        let churners = (0..<2).map { _ in
            Thread {
                // Bounded: churn without a bound, beside the rest of the suite, stopped Thread
                // Sanitizer inside its own allocator (a failed internal check, then a crash) in
                // three runs of three; the Address Sanitizer runs of the same found no error.
                var rounds = 0
                while !stop.withLock({ $0 }), rounds < 400 {
                    let locals = (0..<8).map { index in Local { index } }
                    for local in locals { _ = local.value }
                    rounds += 1
                }
            }
        }
        for thread in churners { thread.start() }
        let failures = await withTaskGroup(of: Int.self) { group in
            for worker in 0..<4 {
                group.addTask {
                    var failures = 0
                    for round in 0..<300 {
                        let local = Local { -1 }
                        local.value = worker * 1_000 + round
                        let snapshot = LocalsSnapshot.capture()
                        let seen = await Task.detached { () -> Int in
                            var seen = -2
                            snapshot.run { seen = local.value }
                            return seen
                        }.value
                        if seen != worker * 1_000 + round { failures += 1 }
                    }
                    return failures
                }
            }
            return await group.reduce(0, +)
        }
        stop.withLock { $0 = true }
        while churners.contains(where: { !$0.isFinished }) { try? await Task.sleep(for: .milliseconds(5)) }
        #expect(failures == 0)
    }
}
