import Synchronization

/// One open scope of a `.task` ``Local``: the value its owner reads and writes (the frame is
/// itself the shared cell that holds it), published to the
/// child tasks created inside it through the Local's internal task-local.
///
/// On runtimes where an `async let` child's heap ancestor cannot be found (see `TaskIdentity`,
/// fact 4), it also keeps the own values of `async let` children (`SharedCell.stackChildren`):
/// such a child cannot be pinned, but it always ends before the frame it inherited does, so the
/// frame releases them.
///
/// A frame lives as long as any task can see it: the scope's own duration, plus every child that
/// inherited it, including an escaping `Task {}` (task-local bindings are retained that way).
@usableFromInline
final class ScopeFrame<Value: Sendable>: SharedCell<Value>, @unchecked Sendable {
    /// The task that opened the scope (address and 64-bit id), or address 0 and the thread's
    /// serial for a thread outside any task. Plain integers, so a frame is cheap to make and drop.
    @usableFromInline let ownerAddress: UInt
    @usableFromInline let ownerID: UInt64
    @usableFromInline let ownerThread: UInt64
    @usableFromInline let inheritance: Inheritance
    @usableFromInline let census: ScopeCensus

    @inlinable
    convenience init(ownerTask: TaskIdentity, inheritance: Inheritance, value: Value, census: ScopeCensus) {
        self.init(ownerAddress: ownerTask.address, ownerID: ownerTask.id, ownerThread: 0,
                  inheritance: inheritance, value: value, census: census)
    }

    convenience init(owner: StorageKey, inheritance: Inheritance, value: Value, census: ScopeCensus) {
        switch owner {
        case .task(let task):
            self.init(ownerTask: task, inheritance: inheritance, value: value, census: census)
        case .thread(let thread):
            self.init(ownerAddress: 0, ownerID: 0, ownerThread: thread.serial,
                      inheritance: inheritance, value: value, census: census)
        case .custom, .none:
            preconditionFailure("swift-locals: scopes with frames are opened by tasks and threads only")
        }
    }

    @inlinable
    init(
        ownerAddress: UInt, ownerID: UInt64, ownerThread: UInt64,
        inheritance: Inheritance, value: Value, census: ScopeCensus
    ) {
        self.ownerAddress = ownerAddress
        self.ownerID = ownerID
        self.ownerThread = ownerThread
        self.inheritance = inheritance
        self.census = census
        super.init(value)
        census.count.add(1, ordering: .relaxed)
    }

    /// Whether `key` is the task or thread that opened this scope.
    func isOwned(by key: StorageKey) -> Bool {
        switch key {
        case .task(let task): ownerAddress == task.address && ownerID == task.id
        case .thread(let thread): ownerAddress == 0 && ownerThread == thread.serial
        case .custom, .none: false
        }
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
