import Synchronization

/// A value that exactly one task or one thread (its owner) reads and writes.
///
/// `@unchecked Sendable`: only the owner touches `value` (and an overlay's layer); a task runs on one thread
/// at a time and the runtime orders its steps across threads. Everyone else only adds the cell to
/// or removes it from a locked table, or replaces it with a new cell; nobody else writes into it.
@usableFromInline
class OwnedCell<Value>: @unchecked Sendable {
    @exclusivity(unchecked) @usableFromInline final var value: Value
    /// The owning task's 64-bit id (0 for threads): tells it from a later task at its address.
    final let id: UInt64
    /// The pin of the owning heap task (or of an `async let` child's heap ancestor); answers
    /// whether the task has ended.
    final let record: TaskRecord?

    init(_ value: Value, id: UInt64 = 0, record: TaskRecord? = nil) {
        self.value = value
        self.id = id
        self.record = record
    }
}

/// The cell of a child of an `.overlay` scope: its own writes on top of the scope's live value.
/// A subclass, so that the cells of every other task stay one field smaller.
final class OverlayCell<Value>: OwnedCell<Value>, @unchecked Sendable {
    let layer = OverlayLayer<Value>()
}

/// A value that several tasks may touch at once (a session's value; a scope's value, as the
/// ``ScopeFrame`` subclass): every access goes through its lock.
///
/// The lock is an atomic flag inside the object, so a scope costs one allocation; Thread Sanitizer
/// sees its acquire and release. Critical sections are key-path projections and copies, plus the
/// body of `update` on a shared value, which the docs ask to keep short.
@usableFromInline
class SharedCell<Value>: @unchecked Sendable {
    // @unchecked: `value`, `stackChildren` and `depth` are only touched while the lock is held,
    // except that the owner of a scope that is not `.shared` reads `value` without it: nobody but
    // that owner ever writes it.
    /// The holding thread's token (see `ThreadContext.token`), or 0 when free.
    @usableFromInline let holder = Atomic<UInt>(0)
    /// How many times the holding thread has re-entered the lock.
    @exclusivity(unchecked) @usableFromInline final var depth = 0
    @exclusivity(unchecked) @usableFromInline final var value: Value
    /// Own values of `async let` children of a scope (see ``ScopeFrame``); empty for sessions.
    @exclusivity(unchecked) @usableFromInline final var stackChildren: [UInt: OwnedCell<Value>] = [:]

    @inlinable
    init(_ value: Value) {
        self.value = value
    }

    /// Takes the lock. The thread that holds it may take it again (the body of `update` on a
    /// shared value touching the same Local): it then works on the value as it stood before.
    @inlinable
    final func lock() {
        let me = ThreadContext.token
        if !holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
            lockContended(me)
        }
    }

    @inlinable
    final func unlock() {
        if depth > 0 {
            depth -= 1
        } else {
            holder.store(0, ordering: .releasing)
        }
    }

    /// The lock was taken: by this thread (re-entry), or else spin briefly, then yield the thread,
    /// until it is ours. Kept out of line: a loop in the inlined lock stops the accessors that
    /// use it from inlining, and their key paths from folding.
    @usableFromInline
    final func lockContended(_ me: UInt) {
        if holder.load(ordering: .relaxed) == me {
            depth += 1
            return
        }
        var spins = 0
        while !holder.compareExchange(expected: 0, desired: me, ordering: .acquiring).exchanged {
            spins += 1
            if spins > 100 {
                ThreadContext.yield()
            }
        }
    }

    /// Changes the value atomically, on a copy that replaces it at the end, so that whatever the
    /// change drops is released after the lock: a deinit may use this very Local.
    @inlinable
    final func mutate<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        lock()
        var updated = value
        let result: R
        do {
            result = try body(&updated)
        } catch {
            unlock()
            throw error
        }
        swap(&value, &updated)
        unlock()
        withExtendedLifetime(updated) {}
        return result
    }

    /// Runs `body` on the value under the lock. For reads, and writes that release nothing;
    /// `mutate` is for changes that may drop values.
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
        lock()
        var old = newValue
        swap(&old, &value)
        unlock()
        return old
    }
}

/// The writes an `.overlay` child made on top of its scope's live value, in order, one per key
/// path (a later write to the same key path replaces the earlier one).
@usableFromInline
final class OverlayLayer<Value> {
    private var writes: [(keyPath: AnyKeyPath, apply: (inout Value) -> Void)] = []

    @usableFromInline
    func record<T>(_ keyPath: WritableKeyPath<Value, T>, _ newValue: T) {
        var kept = writes
        if keyPath == \Value.self as AnyKeyPath {
            kept.removeAll()
        } else {
            kept.removeAll { $0.keyPath == keyPath }
        }
        kept.append((keyPath, { $0[keyPath: keyPath] = newValue }))
        // The replaced writes (and the values they hold) are released after the layer is whole
        // again: their deinits may read this very Local.
        let replaced = writes
        writes = kept
        withExtendedLifetime(replaced) {}
    }

    func apply(to value: inout Value) {
        for write in writes {
            write.apply(&value)
        }
    }
}
