import Foundation
import Locals
import Testing

/// User code that runs while a scope opens or closes (its change closure, the deinit of a value
/// it releases) may use the very Local it is in: read it, reset it, discard its own key. Where
/// that would free the cell the scope is about to write into, these run in a child process: a
/// plain run may not notice a write into freed memory, but one under Address Sanitizer stops.
@Suite("User code inside a scope's opening and closing")
struct UserCodeInScopeTests {
    #if compiler(>=6.2)
    @Test("a change closure that resets its own .task key: the scope opens on the new storage")
    func changeResetsOwnKey() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let seen = await Task {
                scopeWithOwnKeyDropped(local) { value in
                    local.reset()
                    value.id = 1
                }
            }.value
            exit(seen == [1, 5, -1, 0] ? 0 : 1)
        }
    }

    @Test("a change closure that discards its own task's key: the scope opens on the new storage")
    func changeDiscardsOwnKey() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let seen = await Task {
                scopeWithOwnKeyDropped(local) { value in
                    local.discard(key: TaskID.current!)
                    value.id = 2
                }
            }.value
            exit(seen == [2, 5, -1, 0] ? 0 : 1)
        }
    }

    @Test("a key discarded from another thread while the change closure runs, which then reads the Local")
    func keyDiscardedElsewhereDuringChange() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let seen = await Task {
                scopeWithOwnKeyDropped(local) { value in
                    let me = TaskID.current!
                    _ = onNewThreadBlocking { local.discard(key: me) }
                    // The owner's next touch releases the cell the other thread parked.
                    value.id = local.count + 1
                }
            }.value
            exit(seen == [1, 5, -1, 0] ? 0 : 1)
        }
    }

    @Test("an .overlay child's replaced view, released as its scope opens, whose deinit discards the child's key")
    func overlayViewDeinitDiscardsKey() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let childID = Box<TaskID>()
            let viewBuilt = Signal()
            let parentWrote = Signal()
            let seen = await local.withValues({ value in
                value.tracked = Tracked(tag: 1, counter: DeinitCounter()) {
                    if let id = childID.value {
                        local.discard(key: id)
                    }
                }
            }, inheritance: .overlay) { () async -> [Int] in
                let child = Task { () -> [Int] in
                    childID.value = TaskID.current!
                    local.count = 3  // a write of its own: its view is merged from now on
                    _ = local.count  // builds the merged view, which keeps the tracked object too
                    viewBuilt.fire()
                    await parentWrote.wait()
                    let inside = local.withValues({ $0.id = 4 }) { [local.id, local.count] }
                    return inside + [local.id]
                }
                await viewBuilt.wait()
                local.tracked = nil  // the child's stale view now holds the last reference
                parentWrote.fire()
                return await child.value
            }
            exit(seen == [4, 3, -1] ? 0 : 1)
        }
    }

    @Test("a scope's value whose deinit, as the scope closes, resets the owner's key")
    func closingReleaseResetsOwnKey() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let counter = DeinitCounter()
            let seen = await Task { () -> [Int] in
                local.count = 5
                local.withValues({ value in
                    value.tracked = Tracked(tag: 1, counter: counter) { local.reset() }
                }) {}
                let afterFirst = local.count
                local.count = 6
                local.withScope {}  // reuses the frame the first scope left, if it was kept
                return [afterFirst, local.count, counter.count]
            }.value
            exit(seen == [0, 6, 1] ? 0 : 1)
        }
    }

    @Test("a task's first touch is a scope, and the ended tasks' values it sweeps reset the key in their deinit")
    func firstTouchSweepResetsKey() async {
        await #expect(processExitsWith: .success) {
            let local = Local { Sample() }
            let counter = DeinitCounter()
            let armed = Protected(false)
            for round in 0..<4 {
                armed.withLock { $0 = false }
                // Alive at once, so that none of them sweeps another's cell: they end together.
                let together = Latch(8)
                await withDiscardingTaskGroup { group in
                    for tag in 0..<8 {
                        group.addTask {
                            local.tracked = Tracked(tag: tag, counter: counter) {
                                if armed.withLock({ $0 }) {
                                    local.reset()
                                }
                            }
                            await together.arriveAndWait()
                        }
                    }
                }
                armed.withLock { $0 = true }
                let seen = await Task { local.withValues({ $0.id = round }) { local.id } }.value
                guard seen == round else { exit(1) }
            }
            exit(0)
        }
    }

    // MARK: Custom discriminators and threads

    @Test("a session scope's change closure that resets the session")
    func sessionChangeResetsSession() async {
        await #expect(processExitsWith: .success) {
            let cart = Local(SessionDiscriminator()) { Sample() }
            let counter = DeinitCounter()
            let seen = SessionDiscriminator.$session.withValue("s") { () -> [Int] in
                cart.tracked = counter.make(1)
                cart.count = 5
                let inside = cart.withValues({ value in
                    cart.reset()
                    value.tracked = counter.make(2)
                    value.id = 7
                }) { [cart.id, cart.count, cart.tracked?.tag ?? 0] }
                return inside + [cart.id, cart.tracked?.tag ?? 0]
            }
            exit(seen == [7, 5, 2, -1, 0] && counter.count == 2 ? 0 : 1)
        }
    }

    @Test("a session's update whose body resets the session")
    func sessionUpdateResetsSession() async {
        await #expect(processExitsWith: .success) {
            let cart = Local(SessionDiscriminator()) { Sample() }
            let counter = DeinitCounter()
            let seen = SessionDiscriminator.$session.withValue("s") { () -> [Int] in
                cart.tracked = counter.make(1)
                cart.update { value in
                    cart.reset()
                    value.tracked = counter.make(2)
                    value.id = 8
                }
                return [cart.id, cart.tracked?.tag ?? 0, counter.count]
            }
            exit(seen == [8, 2, 1] ? 0 : 1)
        }
    }
    #endif

    @Test("a session scope's change closure that reads the session starts from its value")
    func sessionChangeReadsSession() {
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s") {
            cart.count = 1
            let inside = cart.withValues({ $0.count = cart.count + 1 }) { cart.count }
            #expect(inside == 2)
            #expect(cart.count == 1)
        }
    }

    @Test("a session scope's change closure that waits for another thread using the session")
    func sessionChangeWaitsForAnotherThread() {
        let cart = Local(SessionDiscriminator()) { Sample() }
        SessionDiscriminator.$session.withValue("s") {
            cart.count = 1
            let inside = cart.withValues({ value in
                let seen = onNewThreadBlocking(timeout: .seconds(5)) {
                    SessionDiscriminator.$session.withValue("s") { cart.count }
                }
                value.count = seen ?? -1
            }) { cart.count }
            #expect(inside == 1)
        }
    }

    @Test("a snapshot's listing describes a session's value after its lock: the description may use the session")
    func sessionListingDescribesOutsideLock() {
        SessionDiscriminator.$session.withValue("listed") {
            ListedValue.cart.n = 2
            let listing = LocalsSnapshot.capture().debugDescription
            #expect(listing.contains("n=2 seen=2"))
        }
    }

    @Test("a .thread scope's change closure that resets the thread's key: the scope opens on the new storage")
    func threadChangeResetsOwnKey() async {
        let seen = await onNewThread { () -> [Int] in
            let local = Local(.thread) { Sample() }
            return scopeWithOwnKeyDropped(local) { value in
                local.reset()
                value.id = 9
            }
        }
        #expect(seen == [9, 5, -1, 0])
    }
}

/// The owner writes `count = 5` and opens a scope whose `change` closure drops the owner's own
/// value first (a reset, a discard of its key) and then sets `id`: returns the scope's `id` and
/// `count`, then the owner's after it. The scope must open on the storage the drop made, from the
/// value it saw, and close back to the dropped (initial) value: the same for every way to drop.
func scopeWithOwnKeyDropped(_ local: Local<Sample>, change: (inout Sample) -> Void) -> [Int] {
    local.count = 5
    let inside = local.withValues(change) { [local.id, local.count] }
    return inside + [local.id, local.count]
}

/// A session value whose description reads its own session from another thread, and waits for it.
struct ListedValue: Sendable, CustomStringConvertible {
    static let cart = Local(SessionDiscriminator()) { ListedValue() }

    var n = 1

    var description: String {
        let seen = onNewThreadBlocking(timeout: .seconds(5)) {
            SessionDiscriminator.$session.withValue("listed") { ListedValue.cart.n }
        }
        return "n=\(n) seen=\(seen.map(String.init) ?? "none")"
    }
}
