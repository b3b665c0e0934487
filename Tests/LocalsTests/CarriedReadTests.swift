import Foundation
import Locals
import Synchronization
import Testing

private final class CarriedBox: Sendable {
    let name: String
    init(_ name: String) { self.name = name }
}

private enum CarriedRead {
    @TaskLocal static var optional: String? = "default"
    @TaskLocal static var object: CarriedBox = CarriedBox("default")
    @TaskLocal static var nested: String = "default"
}

/// A carried `@TaskLocal` is read through the runtime's entry point, with the copy specialized
/// for its type, and its default where nothing binds it: an optional bound to nil, an object, and
/// a capture inside a run must come out as `get()` would give them.
@Suite("Carried task-locals read through the runtime")
struct CarriedReadTests {
    @Test("an optional task-local bound to nil is carried as nil, not as its default")
    func optionalBoundToNil() async {
        LocalsSnapshot.carry(CarriedRead.$optional)
        let snapshots = CarriedRead.$optional.withValue(nil) {
            [LocalsSnapshot.capture(), CarriedRead.$optional.withValue("inner") { LocalsSnapshot.capture() }]
        }
        let outside = LocalsSnapshot.capture()
        let seen = PartsThread.run {
            CarriedRead.$optional.withValue("thread's own") {
                snapshots.map { snapshot in snapshot.run { CarriedRead.optional } } + [outside.run { CarriedRead.optional }]
            }
        }
        #expect(seen == [nil, "inner", "default"])
    }

    @Test("a class-valued task-local is carried as the same object, in a child task and inside a run")
    func objectInChildAndRun() async {
        LocalsSnapshot.carry(CarriedRead.$object)
        let bound = CarriedBox("bound")
        let fromChild = await CarriedRead.$object.withValue(bound) {
            await Task { LocalsSnapshot.capture() }.value
        }
        let fromChildTask = await CarriedRead.$object.withValue(bound) {
            await withTaskGroup(of: LocalsSnapshot.self) { group in
                group.addTask { LocalsSnapshot.capture() }
                return await group.next()!
            }
        }
        let seen = PartsThread.run { () -> [Bool] in
            let inner = fromChild.run { LocalsSnapshot.capture() }  // captured inside a run
            return [
                fromChild.run { CarriedRead.object === bound },
                fromChildTask.run { CarriedRead.object === bound },
                inner.run { CarriedRead.object === bound },
                CarriedRead.object.name == "default",
            ]
        }
        #expect(seen == [true, true, true, true])
    }

    @Test("a capture inside a run of a snapshot taken where nothing bound the task-local carries the default")
    func defaultInsideRun() {
        LocalsSnapshot.carry(CarriedRead.$nested)
        let unbound = LocalsSnapshot.capture()
        let seen = PartsThread.run { () -> [String] in
            CarriedRead.$nested.withValue("thread's own") {
                let inner = unbound.run { LocalsSnapshot.capture() }
                return [unbound.run { CarriedRead.nested }, inner.run { CarriedRead.nested }, CarriedRead.nested]
            }
        }
        #expect(seen == ["default", "default", "thread's own"])
    }
}

