public import Synchronization

/// An object with a small lock inside it: the base of every value that several tasks may touch
/// at once (a scope's value, a session's value).
///
/// The lock is one atomic word holding the holder thread's token, so that a scope costs one
/// allocation and an uncontended access one compare-and-swap and one store. The thread that holds
/// it may take it again (the body of `update` on a shared value touching the same Local: it then
/// works on the value as it stood before). A thread that finds it taken spins briefly, then
/// sleeps on a condition variable until the holder lets go: waiting never burns a core. Thread
/// Sanitizer sees the atomic acquire and release.
@usableFromInline
class LockedBox: @unchecked Sendable {
    // @unchecked: subclasses' state is only touched with the lock held (see each subclass).
    /// The holding thread's token (see `Platform.threadToken`), or 0 when free.
    @usableFromInline final let holder = Atomic<UInt>(0)
    /// Threads asleep waiting for this lock.
    @usableFromInline final let sleepers = Atomic<Int>(0)
    /// How many times the holding thread has re-entered the lock.
    @exclusivity(unchecked) @usableFromInline final var depth = 0

    @inlinable
    init() {}

    @inlinable
    final func lock() {
        let me = Platform.threadToken
        if !holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
            lockContended(me)
        }
    }

    @inlinable
    final func unlock() {
        if depth > 0 {
            depth -= 1
            return
        }
        holder.store(0, ordering: .releasing)
        if sleepers.load(ordering: .relaxed) != 0 {
            wakeSleepers()
        }
    }

    /// Whether a thread holds the lock, read with acquiring order. Only meaningful for an object
    /// no other thread can reach any more, where it should read false: a caller that has
    /// synchronized with every other holder some other way (see `ScopeFrame.recycle`) uses it
    /// as a check before skipping the lock, and takes the lock if it reads true.
    @inlinable
    final var isHeld: Bool {
        holder.load(ordering: .acquiring) != 0
    }

    /// The lock was taken: by this thread (re-entry), or else spin briefly, then sleep until it is
    /// free. Kept out of line: a loop in the inlined lock stops the accessors that use it from
    /// inlining, and their key paths from folding.
    @usableFromInline
    final func lockContended(_ me: UInt) {
        if holder.load(ordering: .relaxed) == me {
            depth += 1
            return
        }
        for _ in 0..<64 {
            if holder.load(ordering: .relaxed) == 0,
                holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged
            {
                return
            }
        }
        let bed = Beds.bed(for: self)
        while true {
            bed.withLock {
                sleepers.add(1, ordering: .sequentiallyConsistent)
                if holder.load(ordering: .sequentiallyConsistent) != 0 {
                    // A wake-up that slips between the check and the wait is caught by the
                    // timeout: the sleeper checks again within a millisecond, never spins.
                    bed.wait(milliseconds: 1)
                }
                sleepers.subtract(1, ordering: .relaxed)
            }
            if holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
                return
            }
        }
    }

    @usableFromInline
    final func wakeSleepers() {
        let bed = Beds.bed(for: self)
        bed.withLock { bed.broadcast() }
    }

    /// Runs `body` with the lock held.
    final func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Where threads sleep while they wait for a `LockedBox`: a fixed set of condition variables,
/// picked by the box's address, so that a box needs no memory of its own for sleepers.
enum Beds {
    typealias Bed = PlatformMutex

    private static let beds = (0..<64).map { _ in Bed() }

    static func bed(for box: AnyObject) -> Bed {
        let address = UInt(bitPattern: Unmanaged.passUnretained(box).toOpaque())
        return beds[Int((address >> 4) & 63)]
    }
}

/// A cache line's worth of bytes that nothing reads or writes: placed between fields, or after
/// an object's last field, it keeps fields that one thread writes off the line of fields that
/// other threads read (false sharing, which makes threads that touch different things wait for
/// each other).
struct CacheLinePadding {
    private var words: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) = (0, 0, 0, 0, 0, 0, 0, 0)
}
