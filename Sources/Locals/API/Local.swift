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
/// Values reach child tasks only through scopes; see ``withValues(inheritance:_:operation:)``
/// and ``Inheritance``.
@dynamicMemberLookup
public final class Local<Value: Sendable>: Sendable {
    let mode: Mode
    /// The default policy for children created inside this Local's scopes.
    public let inheritance: Inheritance
    let initialValue: @Sendable () -> Value
    let tables = Locked.make(LocalTables<Value>())
    /// The one task-local this Local binds: the innermost open scope.
    @usableFromInline let scopeKey = TaskLocal<ScopeFrame<Value>?>(wrappedValue: nil)
    @usableFromInline let census = ScopeCensus()
    /// Never reused by another Local: names this Local in the threads' lookup caches.
    @usableFromInline let localID = LocalIDs.next()
    /// Bumped whenever a cell is removed while its owner may still run: a cached cell is used
    /// only while the epoch it was cached under is current.
    @usableFromInline let epoch = Atomic<UInt>(0)
    @usableFromInline let fastPath: FastPath
    /// The library's pthread key, copied here so the fast path reads a field instead of running a
    /// global's one-time initialization check on every access.
    @usableFromInline let pthreadKey = ThreadContext.pthreadKey

    /// Which discriminator the lookup cache serves.
    @usableFromInline
    enum FastPath: UInt8, Sendable {
        case task, thread, none
    }

    enum Mode: Sendable {
        case task
        case thread
        case custom(CustomDiscriminator)

        var isThread: Bool {
            if case .thread = self { true } else { false }
        }
    }

    struct CustomDiscriminator: Sendable {
        let currentKey: @Sendable () -> SessionKey?
        let name: String
    }

    /// Creates a Local whose values start as `initialValue()`.
    ///
    /// - Parameters:
    ///   - discriminator: Decides whose value an access sees: `.task` (the default), `.thread`, or
    ///     a custom ``Discriminator``.
    ///   - inheritance: What children created inside this Local's scopes see (`.copy` by
    ///     default); a scope can override it. Applies to `.task` only.
    ///   - initialValue: Makes a key's first value. Runs once per key, on its first touch (a read
    ///     counts), never while a lock is held, and again only after ``reset()`` or
    ///     ``discard(key:)``. It may use other Locals; touching this same Local for the same key
    ///     stops the program, since that would never finish.
    public init<D: Discriminator>(
        _ discriminator: D = .task,
        inheritance: Inheritance = .copy,
        initialValue: @escaping @Sendable () -> Value
    ) {
        if discriminator is TaskDiscriminator {
            mode = .task
            fastPath = .task
        } else if discriminator is ThreadDiscriminator {
            mode = .thread
            fastPath = .thread
        } else {
            fastPath = .none
            mode = .custom(
                CustomDiscriminator(
                    currentKey: { discriminator.currentKey.map(SessionKey.init) },
                    name: String(describing: D.self)
                )
            )
        }
        self.inheritance = inheritance
        self.initialValue = initialValue
    }

    var discriminatorName: String {
        switch mode {
        case .task: "TaskDiscriminator"
        case .thread: "ThreadDiscriminator"
        case .custom(let custom): custom.name
        }
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
            switch fastPlace() {
            case .cached(let cell):
                // The replaced part is released after the cell is no longer borrowed: its deinit
                // may use this very Local, even reset its own key (which frees the cell).
                let replaced = cell._withUnsafeGuaranteedRef { cell in
                    let replaced = cell.value[keyPath: keyPath]
                    cell.value[keyPath: keyPath] = newValue
                    return replaced
                }
                withExtendedLifetime(replaced) {}
            case .scope(let cell), .ownScope(let cell):
                cell.lock()
                let replaced = cell.value[keyPath: keyPath]
                cell.value[keyPath: keyPath] = newValue
                cell.unlock()
                // Released after the lock: its deinit may use this very Local.
                withExtendedLifetime(replaced) {}
            case .slow: write({ $0[keyPath: keyPath] = newValue }, overlayWrite: { $0.record(keyPath, newValue) })
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
        switch fastPlace() {
        case .cached(let cell): return cell._withUnsafeGuaranteedRef { $0.value[keyPath: keyPath] }
        case .scope(let cell):
            cell.lock()
            defer { cell.unlock() }
            return cell.value[keyPath: keyPath]
        case .ownScope(let cell): return cell.value[keyPath: keyPath]
        case .slow: return read { $0[keyPath: keyPath] }
        }
    }

    /// The slow path of a write. Takes closures rather than the key path, so that the inlined
    /// setter's literal key path folds instead of being built as an object on every write.
    @usableFromInline
    func write(_ assign: (inout Value) -> Void, overlayWrite: (OverlayLayer<Value>) -> Void) {
        switch currentPlace() {
        case .owned(let cell):
            assign(&cell.value)
        case .overlay(let layer, _):
            overlayWrite(layer)
        case .shared(let cell):
            cell.mutate(assign)
        case .unkeyed:
            missingKeyForWrite()
        }
    }

    /// The current key's whole value.
    ///
    /// Reading copies the value out; prefer reading single attributes (`local.x`) on hot paths.
    /// Assigning replaces the whole value (in an `.overlay` child, the child stops reading
    /// through to its scope).
    @inlinable
    public var value: Value {
        get { self[dynamicMember: \Value.self] }
        set { self[dynamicMember: \Value.self] = newValue }
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
    /// with any two locks taken in opposite orders.
    @inlinable
    @discardableResult
    public func update<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        switch fastPlace() {
        case .cached(let cell):
            // Held strongly: the body is user code, and may reset this very key.
            let cell = cell.takeUnretainedValue()
            return try body(&cell.value)
        case .scope(let cell), .ownScope(let cell):
            return try cell.mutate(body)
        case .slow:
            return try updateSlowly(body)
        }
    }

    @usableFromInline
    func updateSlowly<R, E: Error>(_ body: (inout Value) throws(E) -> R) throws(E) -> R {
        switch currentPlace() {
        case .owned(let cell):
            return try body(&cell.value)
        case .overlay(let layer, let frame):
            var merged = overlaid(layer, on: frame)
            let result = try body(&merged)
            layer.record(\Value.self, merged)
            return result
        case .shared(let cell):
            return try cell.mutate(body)
        case .unkeyed:
            missingKeyForWrite()
        }
    }

    /// Drops the current key's storage: its next touch runs the initializer again.
    ///
    /// Inside a scope the task opened (or under a `.shared` scope), the scope's value is replaced
    /// by a fresh initial value, and the scope still restores the previous value when it ends. A
    /// child of a `.copy` or `.overlay` scope drops its own value and starts over from the scope
    /// on its next touch. With no current key, does nothing.
    public func reset() {
        resetCurrent()
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
    /// for `.thread`. Any other key, or a key with no storage, is ignored. The storage is dropped
    /// at once: the key's next touch runs the initializer. The value is released at once too for
    /// a session, for the caller's own key, and for a task that has already ended. The value of a
    /// task or thread still running elsewhere is released at its next touch of this Local, or
    /// lazily after it ends, or when the thread exits: reads take no lock, so that owner may be
    /// reading the value at this very moment.
    public func discard<K: Hashable & Sendable>(key: K) {
        var cells: [OwnedCell<Value>] = []
        var shared: SharedCell<Value>?
        switch mode {
        case .custom:
            let session = SessionKey(key)
            shared = tables.withLock { $0.sessions.removeValue(forKey: session) }
        case .task, .thread:
            switch key {
            case let key as TaskDiscriminator.Key:
                switch key {
                case .task(let task): cells = removeTaskCell(task)
                case .thread(let thread): cells = removeOwnedCell(.thread(thread))
                }
            case let task as TaskID:
                cells = removeTaskCell(task)
            case let thread as ThreadID:
                cells = removeOwnedCell(.thread(thread))
            default:
                break
            }
        }
        withExtendedLifetime((cells, shared)) {}
    }

    private func removeTaskCell(_ task: TaskID) -> [OwnedCell<Value>] {
        let identity = TaskIdentity(address: task.address, id: task.id)
        return removeOwnedCell(.task(identity))
    }

    // MARK: Internals

    /// Where the running context's value is, when that is known without the slow path: the
    /// task's (or thread's) own cell found in this thread's lookup cache, with no lock taken, or
    /// the value of a scope the task owns or shares.
    @usableFromInline
    enum FastPlace {
        case cached(Unmanaged<OwnedCell<Value>>)
        /// A scope's value that others may write too (a `.shared` scope): every access locks.
        case scope(SharedCell<Value>)
        /// The value of a scope the running task owns, which only the owner writes (every policy
        /// but `.shared`): the owner reads it without the lock, and writes it under the lock
        /// because children may be copying or reading through it at the time.
        case ownScope(SharedCell<Value>)
        /// A cache miss, an inheriting child, a session: the slow path decides.
        case slow
    }

    @inlinable
    @inline(__always)
    func fastPlace() -> FastPlace {
        if case .task = fastPath, let task = TaskIdentity.current {
            return fastPlace(address: task.address, id: task.id)
        }
        return fastPlace(address: 0, id: 0)
    }

    /// `fastPlace` for a known running task (address 0: the running thread).
    @inlinable
    @inline(__always)
    func fastPlace(address: UInt, id: UInt64) -> FastPlace {
        switch fastPath {
        case .task:
            if !census.isEmpty, let frame = scopeKey.get() {
                if frame.inheritance == .shared {
                    return .scope(frame)
                }
                let owns = address != 0 && frame.ownerAddress == address && frame.ownerID == id
                return owns ? .ownScope(frame) : .slow
            }
        case .thread:
            break
        case .none:
            return .slow
        }
        guard let cell = ThreadContext.cachedCell(
            key: pthreadKey, local: localID, address: address, id: id, epoch: epoch
        )
        else {
            return .slow
        }
        return .cached(Unmanaged<OwnedCell<Value>>.fromOpaque(cell))
    }

    @usableFromInline
    func read<R>(_ body: (Value) -> R) -> R {
        switch currentPlace() {
        case .owned(let cell):
            return body(cell.value)
        case .overlay(let layer, let frame):
            return body(overlaid(layer, on: frame))
        case .shared(let cell):
            return cell.withValue { body($0) }
        case .unkeyed:
            return body(makeInitialValue(for: .none))
        }
    }

    func overlaid(_ layer: OverlayLayer<Value>, on frame: ScopeFrame<Value>) -> Value {
        var value: Value = frame.loadValue()
        layer.apply(to: &value)
        return value
    }
}

/// Hands out Local identifiers that are never reused, unlike object addresses.
enum LocalIDs {
    private static let counter = Atomic<UInt64>(0)

    static func next() -> UInt64 {
        counter.add(1, ordering: .relaxed).newValue
    }
}

extension Local: CustomStringConvertible {
    public var description: String {
        "Local<\(Value.self)>(\(discriminatorName), inheritance: .\(inheritance))"
    }
}
