import Synchronization

/// One open scope of a `.task` ``Local``: the value its owner reads and writes, published to the
/// child tasks created inside it through the Local's internal task-local.
///
/// Its cell also keeps the own values of `async let` children (`SharedValue.stackChildren`). Such
/// a child lives in its parent's stack allocator and cannot be pinned (see `TaskIdentity`), but it
/// always ends before the frame it inherited does, so the frame releases them.
///
/// A frame lives as long as any task can see it: the scope's own duration, plus every child that
/// inherited it, including an escaping `Task {}` (task-local bindings are retained that way).
@usableFromInline
final class ScopeFrame<Value: Sendable>: Sendable {
    /// The task (or thread, outside any task) that opened the scope.
    let owner: StorageKey
    /// The owner task's address and serial, for the inlined fast path (0 for a thread owner).
    @usableFromInline let ownerAddress: UInt
    @usableFromInline let ownerSerial: UInt32
    @usableFromInline let inheritance: Inheritance
    /// The scope's live value: the owner's, and under `.shared` every child's too.
    @usableFromInline let cell: SharedCell<Value>
    private let census: ScopeCensus

    @usableFromInline
    convenience init(ownerTask: TaskIdentity, inheritance: Inheritance, value: Value, census: ScopeCensus) {
        self.init(owner: .task(ownerTask), inheritance: inheritance, value: value, census: census)
    }

    init(owner: StorageKey, inheritance: Inheritance, value: Value, census: ScopeCensus) {
        self.owner = owner
        if case .task(let task) = owner {
            ownerAddress = task.address
            ownerSerial = task.serial
        } else {
            ownerAddress = 0
            ownerSerial = 0
        }
        self.inheritance = inheritance
        self.cell = Locked.make(SharedValue(value))
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
