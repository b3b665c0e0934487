import Foundation
import Locals
import Testing

/// A `.thread` cell hands the part its last capture took to the next capture while its value is
/// unchanged: every way of changing the value must still give the next capture the new value,
/// a replaced value must go when it is replaced (not when the thread next captures), and a part
/// that several snapshots hold must keep working beside the other parts of each.
@Suite("Snapshots of .thread values: the kept part follows every change and keeps nothing alive")
struct ThreadPartTests {
    @Test("each snapshot runs with the value its capture saw, whichever way the value changed in between")
    func everyChangeIsCaptured() {
        let local = Local(.thread) { Sample() }
        let seen = PartsThread.run { () -> [String] in
            var snapshots: [LocalsSnapshot] = []
            local.simple = "written"  // a write through a key path
            snapshots.append(LocalsSnapshot.capture())
            snapshots.append(LocalsSnapshot.capture())  // unchanged: the same part
            local.value = Sample(simple: "stored")  // the whole value
            snapshots.append(LocalsSnapshot.capture())
            local.update { $0.simple = "updated" }
            snapshots.append(LocalsSnapshot.capture())
            local.withValue(\.simple, "scoped") {
                snapshots.append(LocalsSnapshot.capture())
            }
            snapshots.append(LocalsSnapshot.capture())  // the scope put "updated" back
            local.list.append("more")  // a change in place of a buffer the kept part shares
            snapshots.append(LocalsSnapshot.capture())
            local.simple = "updated"  // the same text again, in a new string
            snapshots.append(LocalsSnapshot.capture())
            return snapshots.map { snapshot in
                PartsThread.run { snapshot.run { "\(local.simple) \(local.list.count)" } }
            }
        }
        #expect(seen == [
            "written 2", "written 2", "stored 2", "updated 2", "scoped 2", "updated 2", "updated 3", "updated 3",
        ])
    }

    @Test("a replaced .thread value is released when it is replaced, though a capture took it earlier")
    func replacedValueGoes() {
        let counter = DeinitCounter()
        let local = Local(.thread) { Sample() }
        let counts = PartsThread.run { () -> [Int] in
            var counts: [Int] = []
            local.tracked = counter.make(1)
            _ = LocalsSnapshot.capture()  // taken and dropped at once
            local.tracked = counter.make(2)  // the first object has nothing left holding it
            counts.append(counter.count)
            var held: LocalsSnapshot? = LocalsSnapshot.capture()
            local.tracked = nil  // the snapshot still holds the second object
            counts.append(counter.count)
            held = nil
            counts.append(counter.count)
            local.tracked = counter.make(3)
            _ = LocalsSnapshot.capture()
            local.withValue(\.tracked, counter.make(4)) {
                _ = LocalsSnapshot.capture()
            }
            counts.append(counter.count)  // the scope's object went with the scope
            local.update { $0.tracked = nil }
            counts.append(counter.count)
            withExtendedLifetime(held) {}
            return counts
        }
        #expect(counts == [1, 1, 2, 3, 4])
    }

    @Test("a part that earlier snapshots hold goes into later lists beside other parts, which all run")
    func sharedPartsBesideOthers() {
        let first = Local(.thread, name: "kept-1") { -1 }
        let session = Local(SessionDiscriminator(), name: "kept-2") { -1 }
        let third = Local(.thread, name: "kept-3") { -1 }
        let results = PartsThread.run { () -> [[Int]] in
            first.value = 1
            third.value = 3
            // Alone, then beside a session part and another `.thread` part, then alone again:
            // the same kept parts in lists of one, two and three.
            let alone = LocalsSnapshot.capture()
            let both = SessionDiscriminator.$session.withValue("kept-session") { () -> LocalsSnapshot in
                session.value = 2
                return LocalsSnapshot.capture()
            }
            let again = LocalsSnapshot.capture()
            let all = [alone, both, again, alone, both]
            return all.map { snapshot in
                PartsThread.run { snapshot.run { [first.value, session.value, third.value] } }
            }
        }
        #expect(results == [[1, -1, 3], [1, 2, 3], [1, -1, 3], [1, -1, 3], [1, 2, 3]])
    }
}
