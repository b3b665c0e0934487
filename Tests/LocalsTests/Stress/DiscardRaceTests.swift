// Stress: `discard(key:)` from a plain thread, aimed at tasks that are opening and closing scopes
// and snapshot runs on the same Locals at that moment. `discard(key:)` is documented to drop one
// key's storage now, from any context; the owner's scope or run must then close on whatever cell
// the owner has, never on the one the discard took away (which the owner's next touch frees).
// Bounded: about a second of work, judged only by what the tasks read and by the process ending
// normally, never by timing. CI runs it under Thread and Address Sanitizer too.

import Foundation
import Locals
import Testing

struct RaceValue: Sendable {
    var mark = 0
    var list: [Int] = []
}

@Suite("Stress: discard(key:) from another thread while its task opens and closes scopes")
struct DiscardRaceTests {
    #if compiler(>=6.2)
    @Test("scopes and snapshot runs survive discards of their task's key from a plain thread")
    func discardsDuringScopesAndRuns() async {
        await #expect(processExitsWith: .success) {
            exit(await DiscardRace.run(for: .seconds(1)) ? 0 : 1)
        }
    }
    #endif
}

/// Four tasks loop over scopes and runs (their own value in a sync scope, a `.shared` scope's
/// snapshot run sync and async, an `.overlay` scope's run with a write) while a plain thread
/// discards their keys every 20 microseconds. True if every read inside saw the scope's value (or, in the `.overlay` run, the scope's value
/// again once a discard took the run's own write away).
enum DiscardRace {
    static func run(for duration: Duration) async -> Bool {
        let own = Local(inheritance: .copy) { RaceValue() }
        let shared = Local(inheritance: .shared) { RaceValue() }
        let overlay = Local(inheritance: .overlay) { RaceValue() }
        let ids = Protected<[TaskID]>([])
        let stop = Protected(false)
        let wrong = Protected(0)
        let rounds = Protected(0)

        let discarder = Thread {
            while !stop.withLock({ $0 }) {
                for id in ids.withLock({ $0 }) {
                    own.discard(key: id)
                    shared.discard(key: id)
                    overlay.discard(key: id)
                }
                usleep(20)
            }
        }
        discarder.start()

        // Snapshots taken inside scopes of the two policies that a run reads through.
        let sharedSnapshot = shared.withValue(\.mark, 7) { LocalsSnapshot.capture() }
        let overlaySnapshot = overlay.withValue(\.mark, 9) { LocalsSnapshot.capture() }
        let deadline = ContinuousClock.now + duration
        let workers: [@Sendable (Int) async -> Bool] = [
            { round in
                own.withValue(\.mark, round) {
                    own.mark == round && own.withValue(\.list, [round]) { own.list == [round] }
                }
            },
            { _ in sharedSnapshot.run { shared.mark == 7 } },
            { _ in
                await sharedSnapshot.run {
                    await Task.yield()
                    return shared.mark == 7
                }
            },
            { round in
                overlaySnapshot.run {
                    overlay.mark = round
                    // A discard between the write and the read drops the run's own layer (as
                    // documented: the key's storage is gone), so the read goes through to the
                    // scope's 9. Anything else would be a value from nowhere.
                    let seen = overlay.mark
                    return seen == round || seen == 9
                }
            },
        ]
        await withTaskGroup(of: Void.self) { group in
            for worker in workers {
                group.addTask {
                    ids.withLock { $0.append(TaskID.current!) }
                    var round = 0
                    // At least 100 rounds each, however late the task starts on a loaded machine:
                    // the test is about what the rounds read, never about how many fit in the time.
                    while round < 100 || ContinuousClock.now < deadline {
                        round += 1
                        if await !worker(round) { wrong.withLock { $0 += 1 } }
                    }
                    rounds.withLock { $0 += round }
                }
            }
        }
        stop.withLock { $0 = true }
        return wrong.withLock { $0 } == 0 && rounds.withLock { $0 } >= workers.count
    }
}
