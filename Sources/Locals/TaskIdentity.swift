#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Android)
import Android
#endif

// The one place in swift-locals that relies on Swift runtime behavior the language does not promise.
//
// Swift 6.3 has no public task identity that is never reused, and no hook at task creation or end
// (see FACTS.md). `withUnsafeCurrentTask` hands out the running task's address, but addresses are
// reused at once, so an address alone would give one task's values to a later task. Three facts
// about the runtime's task header close that gap; each is checked by `TaskIdentityTests`, so a
// runtime that changes any of them fails the test suite loudly instead of mixing values up:
//
// 1. Every job starts with a heap-object header (2 words) and two scheduler words, then
//    `Job::Flags` (32 bits) and `Job::Id` (32 bits). The runtime marks `Flags` "WARNING: DO NOT
//    MOVE. Schedulers may assume the memory location of the Flags", and `Id` is the task's serial
//    number from a process-wide counter. Address plus serial is a task identity that a later task
//    at the same address does not share.
// 2. Bit 28 of `Flags` (`Task_IsAsyncLetTask`) marks an `async let` child. Such a task lives in its
//    parent's stack allocator with immortal reference counts and is destroyed in place when the
//    `async let` ends, whatever references remain, so it must never be retained past its end.
// 3. Every other task is an ordinary reference-counted heap object that retains itself while it
//    runs. A strong reference to it (a "pin") keeps its address from being reused, and once the
//    pin is the only reference left, the task has ended: that is how storage learns that a task is
//    gone without any call from the user.
// 4. A child task (an `async let` or a group child) has a `ChildFragment` right after its
//    `AsyncTask` object, whose first word is the parent task. An `async let` child ends before
//    its nearest heap ancestor does, so pinning that ancestor bounds the child's lifetime.
//    `sizeof(AsyncTask)` is computed below from the runtime's header for the platforms where it is
//    verified (Linux, 64-bit, Swift 6.3); elsewhere `parentOffset` is nil and an `async let`
//    child's value outside any scope is reclaimed only when a later task reuses its address.

/// The identity of a running task: its address and the runtime's serial number for it.
@usableFromInline
struct TaskIdentity: Hashable, Sendable {
    /// The task object's address. Unique among running tasks; reused after a task ends.
    @usableFromInline let address: UInt
    /// The runtime's serial number for the task (`Job::Id`); differs between tasks that share an
    /// address one after the other.
    @usableFromInline let serial: UInt32
    /// Whether the task is an `async let` child (stack-allocated in its parent, never pinned).
    @usableFromInline let isAsyncLet: Bool

    /// Two identities are equal when address and serial are: the flags are derived data.
    @inlinable
    static func == (lhs: TaskIdentity, rhs: TaskIdentity) -> Bool {
        lhs.address == rhs.address && lhs.serial == rhs.serial
    }

    @inlinable
    func hash(into hasher: inout Hasher) {
        hasher.combine(address)
        hasher.combine(serial)
    }

    @usableFromInline static let flagsOffset = 4 * MemoryLayout<UInt>.size
    @usableFromInline static let serialOffset = 4 * MemoryLayout<UInt>.size + MemoryLayout<UInt32>.size
    @usableFromInline static let asyncLetFlag: UInt32 = 1 << 28
    @usableFromInline static let jobKindMask: UInt32 = 0xFF

    @inlinable
    init(address: UInt, serial: UInt32, isAsyncLet: Bool) {
        self.address = address
        self.serial = serial
        self.isAsyncLet = isAsyncLet
    }

    /// The identity of the task running now, or nil outside any task.
    @inlinable
    static var current: TaskIdentity? {
        // The closure returns only the address (a trivial Int, the cheapest form): the running
        // task's header stays valid after the closure returns, since this code runs in that task.
        let address = withUnsafeCurrentTask { unsafeBitCast($0, to: UInt.self) }
        guard let header = UnsafeRawPointer(bitPattern: address) else { return nil }
        return TaskIdentity(header: header)
    }

    @inlinable
    init(_ task: UnsafeCurrentTask) {
        self.init(header: unsafeBitCast(task, to: UnsafeRawPointer.self))
    }

    @inlinable
    init(header: UnsafeRawPointer) {
        let flags = header.load(fromByteOffset: Self.flagsOffset, as: UInt32.self)
        if _slowPath(flags & Self.jobKindMask != 0) {
            Self.unsupportedRuntime(flags)
        }
        self.init(
            address: UInt(bitPattern: header),
            serial: header.load(fromByteOffset: Self.serialOffset, as: UInt32.self),
            isAsyncLet: flags & Self.asyncLetFlag != 0
        )
    }

    @usableFromInline
    static func unsupportedRuntime(_ flags: UInt32) -> Never {
        fatalError(
            """
            swift-locals: the running task's header does not have the layout this version expects \
            (job flags 0x\(String(flags, radix: 16)) do not mark a task). This Swift runtime is not \
            supported yet; please report it with the output of `swift --version`.
            """
        )
    }

    /// Whether a child cell of this task lives in the scope frame it inherited rather than in
    /// the Local's table: an `async let` child whose heap ancestor cannot be found (see fact 4).
    var isKeptByFrame: Bool {
        isAsyncLet && Self.parentOffset == nil
    }

    /// Where a child task's parent pointer is: right after the `AsyncTask` object, whose size is
    /// the job header (8 words), the resume context and a reserved word, then the private storage
    /// (6 words, 16 bytes, the active status of 2 words, and a recursive mutex, rounded up to 2
    /// words). Nil where that layout has not been verified.
    static let parentOffset: Int? = {
        #if os(Linux) && (arch(x86_64) || arch(arm64)) && compiler(>=6.3) && !compiler(>=6.4)
        let word = MemoryLayout<UInt>.size
        let privateStorage = 6 * word + 16 + 2 * word + MemoryLayout<pthread_mutex_t>.size
        return 10 * word + (privateStorage + 2 * word - 1) / (2 * word) * (2 * word)
        #else
        return nil
        #endif
    }()

    /// The nearest ancestor of the running `async let` child that is a heap task, or nil where
    /// the task is not an `async let` child or the layout is not known.
    static func heapAncestorOfCurrentAsyncLet() -> TaskIdentity? {
        guard let offset = parentOffset, let task = current, task.isAsyncLet,
            var header = UnsafeRawPointer(bitPattern: task.address)
        else {
            return nil
        }
        // Every task on the way up is alive: an ancestor outlives a running `async let` child.
        while let parent = UnsafeRawPointer(bitPattern: header.load(fromByteOffset: offset, as: UInt.self)) {
            let flags = parent.load(fromByteOffset: flagsOffset, as: UInt32.self)
            guard flags & jobKindMask == 0 else { return nil }
            if flags & asyncLetFlag == 0 {
                return TaskIdentity(header: parent)
            }
            header = parent
        }
        return nil
    }

    /// A strong reference to `ancestor`, a heap task that is known to be alive (the heap ancestor
    /// of the running task).
    static func pin(ancestor: TaskIdentity) -> TaskPin {
        Unmanaged<TaskPin>.fromOpaque(UnsafeRawPointer(bitPattern: ancestor.address)!).takeUnretainedValue()
    }

    /// A strong reference to the running task, or nil for an `async let` child (which must not be
    /// retained: see fact 2 above) and outside any task.
    static func pinCurrent() -> TaskPin? {
        withUnsafeCurrentTask { task -> TaskPin? in
            guard let task, !TaskIdentity(task).isAsyncLet else { return nil }
            // The task is a native Swift heap object; reinterpreting the reference copies it with
            // a native retain, which keeps the task's memory (and so its address) alive.
            return unsafeBitCast(task, to: TaskPin.self)
        }
    }
}

/// A stand-in class type for a pinned task object. Never instantiated, never dereferenced: a
/// `TaskPin` reference only holds a retain on a task and answers whether it is the last one.
final class TaskPin {
    private init() {}

    /// True once the task has ended and nothing but this pin refers to it.
    static func taskHasEnded(_ pin: inout TaskPin) -> Bool {
        isKnownUniquelyReferenced(&pin)
    }
}
