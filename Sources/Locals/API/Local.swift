import Synchronization

/// An object whose attributes hold a separate value for each task (or thread, or session):
/// Python's `threading.local` for Swift Concurrency.
///
/// Declare the value as a `Sendable` struct and create one `Local` for it, usually as a global or
/// a static. The closure is the initializer: it runs once per key (task, thread or session),
/// lazily, on that key's first touch (a read counts).
///
/// ```swift
/// struct RequestState: Sendable {
///     var requestID = "-"
///     var user: String? = nil
/// }
/// let request = Local { RequestState() }
///
/// // In a middleware:
/// request.requestID = id
/// // Anywhere further down the same task, with no parameter passing:
/// logger.info("handling", metadata: ["request-id": "\(request.requestID)"])
/// ```
///
/// Every attribute of the value is a property of the `Local` (`@dynamicMemberLookup` over
/// `WritableKeyPath`), read and written with plain property syntax. Each single access is atomic.
/// `request.depth += 1` is two accesses (a read, then a write): where other tasks share the value
/// (a `.shared` scope, a session), use ``update(_:)`` to read-modify-write in one step.
///
/// Which value an access sees is decided by the discriminator:
/// - ``TaskDiscriminator`` (`.task`, the default): one value per task; per thread outside tasks.
/// - ``ThreadDiscriminator`` (`.thread`): one value per OS thread.
/// - any custom ``Discriminator``: one value per key it returns (a session, a tenant).
///
/// Values reach child tasks only through scopes; see ``withValues(_:inheritance:file:line:operation:)``
/// and ``Inheritance``.
@dynamicMemberLookup
public final class Local<Value: Sendable>: Sendable {
    /// Every value this Local holds, and how an access finds its own: one backend, chosen from
    /// what the discriminator declares.
    @usableFromInline let backend: Backend<Value>
    /// The default policy for children created inside this Local's scopes.
    public let inheritance: Inheritance

    /// Creates a Local whose values start as `initialValue()`.
    ///
    /// - Parameters:
    ///   - discriminator: Decides whose value an access sees: `.task` (the default), `.thread`, or
    ///     a custom ``Discriminator``.
    ///   - inheritance: What children created inside this Local's scopes see (`.copy` by
    ///     default); a scope can override it. Applies to `.task` only.
    ///   - name: A name for listings: ``description`` and a ``LocalsSnapshot``'s debug
    ///     description. Optional.
    ///   - initialValue: Makes a key's first value. Runs once per key, on its first touch (a read
    ///     counts), never while a lock is held, and again only after ``reset()`` or
    ///     ``discard(key:)``. It may use other Locals; touching this same Local for the same key
    ///     stops the program, since that would never finish.
    @inlinable
    public init<D: Discriminator>(
        _ discriminator: D = .task,
        inheritance: Inheritance = .copy,
        name: String? = nil,
        initialValue: @escaping @Sendable () -> Value
    ) {
        backend = Backend.make(discriminator, inheritance: inheritance, name: name, initialValue: initialValue)
        self.inheritance = inheritance
    }

    // MARK: Reading and writing

    /// Reads or writes one attribute of the current key's value.
    ///
    /// ```swift
    /// request.requestID = "abc"
    /// let id = request.requestID
    /// ```
    ///
    /// Each read and each write is atomic on its own; `request.depth += 1` is two accesses. A
    /// read with no current key (a custom discriminator returning nil) returns the initializer's
    /// value without storing it; a write with no current key stops the program.
    @inlinable
    public subscript<T>(dynamicMember keyPath: WritableKeyPath<Value, T>) -> T {
        @inline(__always) get {
            project(keyPath)
        }
        @inline(__always) set {
            switch backend.kind {
            case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.write(keyPath, newValue) }
            case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.write(keyPath, newValue) }
            }
        }
    }

    /// Reads a read-only property of the current key's value (a `let`, a computed property).
    ///
    /// ```swift
    /// let names = attributes.names
    /// ```
    @inlinable
    public subscript<T>(dynamicMember keyPath: KeyPath<Value, T>) -> T {
        @inline(__always) get {
            project(keyPath)
        }
    }

    /// Reads one part of the running context's value. Always inlined, so that a literal key path
    /// folds to a plain field access at the call site.
    @inlinable
    @inline(__always)
    func project<T>(_ keyPath: KeyPath<Value, T>) -> T {
        switch backend.kind {
        case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.read(keyPath) }
        case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.read(keyPath) }
        }
    }

    /// The current key's whole value.
    ///
    /// Reading copies the value out; prefer reading single attributes (`local.x`) on hot paths.
    /// Assigning replaces the whole value (in an `.overlay` child, the child stops reading
    /// through to its scope).
    @inlinable
    public var value: Value {
        get {
            switch backend.kind {
            case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.load() }
            case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.load() }
            }
        }
        set {
            switch backend.kind {
            case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.store(newValue) }
            case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.store(newValue) }
            }
        }
    }

    /// Reads, changes and writes back the current key's value in one atomic step, and returns
    /// what `body` returns.
    ///
    /// ```swift
    /// let hits = counters.update { $0.hits += 1; return $0.hits }
    /// ```
    ///
    /// Where the value lives in a scope or a session, `body` runs while the value's lock is held,
    /// as with `Mutex.withLock`, on a copy that replaces the value when `body` returns (so that
    /// what it drops is released after the lock): keep it short. Children of the scope that copy
    /// or read through it wait meanwhile. If `body` touches the same Local it sees the value as
    /// it was before `update`, and its writes are overwritten; if it calls `update` on another
    /// shared Local while another task nests the two the other way round, both wait forever, as
    /// with any two locks taken in opposite orders. In an `.overlay` child, `update` changes the
    /// whole value: the child keeps its own copy from then on and stops reading through.
    @inlinable
    @discardableResult
    public func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        // Through the unretained references: the Local holds its backend for the whole call.
        switch backend.kind {
        case .tasks(let cells), .threads(let cells):
            try cells._withUnsafeGuaranteedRef { cells in Result { () throws(E) -> R in try cells.update(body) } }.get()
        case .sessions(let sessions):
            try sessions._withUnsafeGuaranteedRef { sessions in Result { () throws(E) -> R in try sessions.update(body) } }
                .get()
        }
    }

    /// Whether the running context has a key for this Local: always for `.task` and `.thread`;
    /// for a custom discriminator, whether its `currentKey` is non-nil here (or a
    /// ``LocalsSnapshot`` run makes a captured session current).
    ///
    /// Where there is no key, reads return the initializer's value without storing it, and writes
    /// and scopes stop the program. Code that may run outside any session (a library, a
    /// middleware) asks this first:
    ///
    /// ```swift
    /// if cart.hasCurrentKey { cart.lastSeen = now }
    /// ```
    public var hasCurrentKey: Bool {
        switch backend.kind {
        case .tasks, .threads: true
        case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.hasCurrentKey }
        }
    }

    /// Drops the current key's storage: its next touch runs the initializer again.
    ///
    /// Inside a scope the task opened (or under a `.shared` scope), the scope's value is replaced
    /// by a fresh initial value, and the scope still restores the previous value when it ends. A
    /// child of a `.copy` or `.overlay` scope drops its own value and starts over from the scope
    /// on its next touch. With no current key, does nothing.
    public func reset() {
        switch backend.kind {
        case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.resetCurrent() }
        case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.resetCurrent() }
        }
    }

    /// Drops one key's storage now, from any context: a session that ended, a thread you know
    /// is gone. The key's next touch runs the initializer again.
    ///
    /// ```swift
    /// cart.discard(key: sessionID)
    /// ```
    ///
    /// Pass a key of the Local's discriminator: the custom discriminator's `Key`,
    /// ``TaskDiscriminator/Key`` (or a ``TaskID`` or ``ThreadID``) for `.task`, a ``ThreadID``
    /// for `.thread`. A key of any other type stops the program with a message naming both
    /// types: no context could ever have it, so its value would be kept forever. A key with no
    /// storage is ignored. The storage is dropped at once: the key's next touch runs the
    /// initializer. The value is released at once too for a session, for the caller's own key,
    /// and for a task that has already ended. The value of a task or thread still running
    /// elsewhere is released at its next touch of this Local, or after it ends, or when the
    /// thread exits: reads take no lock, so that owner may be reading the value at this very
    /// moment.
    public func discard<K: Hashable & Sendable>(key: K) {
        switch backend.kind {
        case .tasks(let cells), .threads(let cells): cells._withUnsafeGuaranteedRef { $0.discard(key: key) }
        case .sessions(let sessions): sessions._withUnsafeGuaranteedRef { $0.discard(key: key) }
        }
    }
}

extension Local: CustomStringConvertible {
    public var description: String {
        backend.description
    }
}
