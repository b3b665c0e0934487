import Synchronization

/// One open scope of a `.task` ``Local``: the value its owner reads and writes, published to the
/// child tasks created inside it through the Local's internal task-local.
///
/// A frame lives as long as any task can see it: the scope's own duration, plus every child that
/// inherited it, including an escaping `Task {}` (task-local bindings are retained that way).
@usableFromInline
final class ScopeFrame<Value: Sendable>: Sendable {
    /// The task (or thread, outside any task) that opened the scope.
    let owner: StorageKey
    let inheritance: Inheritance
    /// The scope's live value: the owner's, and under `.shared` every child's too.
    let cell: SharedCell<Value>
    /// Own values of `async let` children. Such a child lives in its parent's stack allocator and
    /// cannot be pinned (see TaskIdentity), but it always ends before the frame it inherited does,
    /// so the frame releases them.
    let stackChildren = Locked<[UInt: OwnedCell<Value>]>([:])
    private let census: ScopeCensus

    init(owner: StorageKey, inheritance: Inheritance, value: Value, census: ScopeCensus) {
        self.owner = owner
        self.inheritance = inheritance
        self.cell = SharedCell(value)
        self.census = census
        census.count.add(1, ordering: .relaxed)
    }

    deinit {
        census.count.subtract(1, ordering: .releasing)
    }
}

/// Counts a Local's frames that some task can still see. While it is zero, an access skips the
/// task-local lookup altogether.
@usableFromInline
final class ScopeCensus: Sendable {
    @usableFromInline let count = Atomic<Int>(0)

    init() {}

    @inlinable
    var isEmpty: Bool {
        count.load(ordering: .acquiring) == 0
    }
}
