import Foundation
import Locals
import Testing

/// What a snapshot holds beyond its scope chain (`.thread` values, sessions, `.overlay` writes):
/// listed and put back in the order the Locals were made, whatever their kinds, and released
/// without one nested call per part.
@Suite("Snapshot parts: their order, and many of them")
struct SnapshotPartsTests {
    @Test("a capture lists .thread and session Locals in the order they were made, and a run puts each back")
    func orderAcrossKinds() {
        // Made alternately, so that the capture, which takes the Locals kind by kind, must put
        // each part in its place.
        let first = Local(.thread, name: "parts-1") { -1 }
        let second = Local(SessionDiscriminator(), name: "parts-2") { -1 }
        let third = Local(.thread, name: "parts-3") { -1 }
        let fourth = Local(SessionDiscriminator(), name: "parts-4") { -1 }
        let fifth = Local(.thread, name: "parts-5") { -1 }
        let snapshot = PartsThread.run { () -> LocalsSnapshot in
            SessionDiscriminator.$session.withValue("parts-session") {
                for (index, local) in [first, second, third, fourth, fifth].enumerated() {
                    local.value = index + 1
                }
                return LocalsSnapshot.capture()
            }
        }
        let description = snapshot.debugDescription
        let lines = description.split(separator: "\n")
        // The line of each Local, with its value.
        let positions = (1...5).map { number in
            lines.firstIndex { $0.contains("\"parts-\(number)\"") && $0.contains(") = \(number) (") }
        }
        #expect(positions.allSatisfy { $0 != nil }, "\(description)")
        let found = positions.compactMap { $0 }
        #expect(found == found.sorted(), "the parts are not in the Locals' order: \(description)")
        let inside = PartsThread.run {
            snapshot.run { [first, second, third, fourth, fifth].map(\.value) }
        }
        #expect(inside == [1, 2, 3, 4, 5])
    }

    @Test("a snapshot of 3,000 .thread values is taken, run and released on a thread with a 128 KiB stack")
    func manyParts() {
        let count = 3_000
        let locals = (0..<count).map { _ in Local(.thread) { -1 } }
        let ok = PartsThread.run(stackSize: 128 << 10) { () -> Bool in
            for (index, local) in locals.enumerated() {
                local.value = index
            }
            var snapshot: LocalsSnapshot? = LocalsSnapshot.capture()
            let taken = snapshot.unsafelyUnwrapped
            let counted = taken.count == count
            let ran = PartsThread.run { taken.run { locals.last?.value } } == count - 1
            snapshot = nil
            _ = consume taken  // the parts go here, on the small stack
            for local in locals {
                local.value = -1
            }
            return counted && ran
        }
        #expect(ok)
    }
}

/// Runs `body` on a new plain thread (its own `.thread` values), and waits for its result.
enum PartsThread {
    static func run<T: Sendable>(stackSize: Int? = nil, _ body: @escaping @Sendable () -> T) -> T {
        guard let result = onNewThreadBlocking(timeout: .seconds(120), stackSize: stackSize, body) else {
            fatalError("a test thread did not finish in 120 s")
        }
        return result
    }
}
