import Synchronization

/// A value that exactly one task or one thread (its owner) reads and writes.
///
/// `@unchecked Sendable`: only the owner touches `value` and `overlay`; a task runs on one thread
/// at a time and the runtime orders its steps across threads. Everyone else only adds the cell to
/// or removes it from a locked table, or replaces it with a new cell; nobody else writes into it.
@usableFromInline
final class OwnedCell<Value>: @unchecked Sendable {
    @exclusivity(unchecked) @usableFromInline var value: Value
    /// The child's own writes, for a child of an `.overlay` scope; nil otherwise.
    var overlay: OverlayLayer<Value>?
    /// The owning task's serial number (0 for threads): tells it from a later task at its address.
    let serial: UInt32
    /// The owning heap task's shared pin; answers whether the task has ended.
    let record: TaskRecord?

    init(_ value: Value, serial: UInt32 = 0, record: TaskRecord? = nil, overlay: OverlayLayer<Value>? = nil) {
        self.value = value
        self.serial = serial
        self.record = record
        self.overlay = overlay
    }
}

/// A value that several tasks may touch at once (a session's value; a scope's value, as the
/// ``ScopeFrame`` subclass): every access goes through its lock.
///
/// The lock is an atomic flag inside the object, so a scope costs one allocation; Thread Sanitizer
/// sees its acquire and release. Critical sections are key-path projections and copies, plus the
/// body of `update` on a shared value, which the docs ask to keep short.
@usableFromInline
class SharedCell<Value>: @unchecked Sendable {
    // @unchecked: `value` and `stackChildren` are only touched while `isLocked` is held.
    @usableFromInline let isLocked = Atomic<Bool>(false)
    @exclusivity(unchecked) @usableFromInline var value: Value
    /// Own values of `async let` children of a scope (see ``ScopeFrame``); empty for sessions.
    @exclusivity(unchecked) @usableFromInline var stackChildren: [UInt: OwnedCell<Value>] = [:]

    @inlinable
    init(_ value: Value) {
        self.value = value
    }

    @inlinable
    final func lock() {
        if !isLocked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            lockContended()
        }
    }

    /// The lock was taken: spin briefly, then yield the thread, until it is ours.
    @usableFromInline
    final func lockContended() {
        var spins = 0
        while !isLocked.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged {
            spins += 1
            if spins > 100 {
                ThreadContext.yield()
            }
        }
    }

    @inlinable
    final func unlock() {
        isLocked.store(false, ordering: .releasing)
    }

    @inlinable
    final func withValue<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body(&value)
    }

    final func withStackChildren<R>(_ body: (inout [UInt: OwnedCell<Value>]) -> R) -> R {
        lock()
        defer { unlock() }
        return body(&stackChildren)
    }

    @inlinable
    final func loadValue() -> Value {
        withValue { $0 }
    }

    /// Replaces the value and hands back the old one, to be released outside the lock.
    @inlinable
    final func exchangeValue(_ newValue: Value) -> Value {
        withValue { value in
            var old = newValue
            swap(&old, &value)
            return old
        }
    }
}

/// The writes an `.overlay` child made on top of its scope's live value, in order, one per key
/// path (a later write to the same key path replaces the earlier one).
final class OverlayLayer<Value> {
    private var writes: [(keyPath: AnyKeyPath, apply: (inout Value) -> Void)] = []

    func record<T>(_ keyPath: WritableKeyPath<Value, T>, _ newValue: T) {
        if keyPath == \Value.self as AnyKeyPath {
            writes.removeAll()
        } else {
            writes.removeAll { $0.keyPath == keyPath }
        }
        writes.append((keyPath, { $0[keyPath: keyPath] = newValue }))
    }

    func apply(to value: inout Value) {
        for write in writes {
            write.apply(&value)
        }
    }
}
