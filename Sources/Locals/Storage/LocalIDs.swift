import Synchronization

/// Hands out Local identifiers that are never reused, unlike object addresses.
enum LocalIDs {
    private static let counter = Atomic<UInt64>(0)

    static func next() -> UInt64 {
        counter.add(1, ordering: .relaxed).newValue
    }
}
