/// The storage engine of one ``Local``: what every backend has (the Local's facts and its snapshot
/// operations) and does with them. The values themselves are in one of two
/// backends, chosen once when the Local is made, from what its discriminator declares
/// (`Discriminator.valueStorage`):
///
/// - `CellStorage`: `.task` and `.thread` Locals. Each task or thread that touches the Local owns
///   a cell, found through the calling thread's lookup cache with no lock; scopes, inheritance
///   and ended tasks are its business.
/// - `SessionStorage`: a custom discriminator's Locals. One cell per key, found by the key,
///   locked around each access.
///
/// A `Local` holds its backend as a `Backend` and dispatches each access to it once; each backend
/// owns its whole access (lookup, lock, read, unlock, release) and its part of a snapshot.
///
/// Nothing of user code (initializers, deinits) runs while a lock of a backend is held: removed
/// cells and replaced values are released after it.
///
/// A protocol rather than a base class: each backend is a root class, so that its hot fields sit
/// at offsets the compiler knows, and a call into it retains nothing (measured: with a generic
/// base class, every read retained and released the storage, which the weak references of its
/// snapshot operations send to the slow, side-table path).
@usableFromInline
protocol Storage<Value>: AnyObject, Sendable {
    associatedtype Value: Sendable
    /// Who the Local is, and its initializer.
    var facts: LocalFacts<Value> { get }
    /// `facts.localID`, stored again in the backend itself: every access compares it.
    var localID: UInt64 { get }
    /// This Local's snapshot operations (set once, by the backend's `registered()`, before the
    /// Local is used): what a context that touched it lists, for snapshots.
    var ops: SnapshotOps? { get set }
}

/// What a Local is, whatever its backend, and its initializer: made once, with the Local.
@usableFromInline
final class LocalFacts<Value: Sendable>: Sendable {
    /// Never reused by another Local: names the Local in the threads' lookup caches.
    let localID = LocalIDs.next()
    let initialValue: @Sendable () -> Value
    /// The policy of this Local's scopes where the scope names none.
    @usableFromInline let inheritance: Inheritance
    /// The Local's name, if it has one, then its type, discriminator and policy.
    @usableFromInline let description: String
    /// The discriminator's type name, for messages.
    let discriminatorName: String

    @usableFromInline
    init(
        discriminator: Any.Type, inheritance: Inheritance, name: String?,
        initialValue: @escaping @Sendable () -> Value
    ) {
        self.initialValue = initialValue
        discriminatorName = String(describing: discriminator)
        self.inheritance = inheritance
        let named = name.map { "\"\($0)\", " } ?? ""
        description = "Local<\(Value.self)>(\(named)\(discriminatorName), inheritance: .\(inheritance))"
    }

    /// Runs the initializer for `owner`, stopping the program if it touches the same key again.
    @usableFromInline
    func makeInitialValue(for owner: OwnerKey) -> Value {
        let context = ThreadContext.current
        let me = ObjectIdentifier(self)
        if context.isInitializing(me, owner) {
            reentrantInitializer(key: owner.description)
        }
        context.initializing.append((me, owner))
        defer {
            if let index = context.initializing.lastIndex(where: { $0.local == me && $0.key == owner }) {
                context.initializing.remove(at: index)
            }
        }
        return initialValue()
    }

    func reentrantInitializer(key: String) -> Never {
        fatalError(
            """
            swift-locals: the initializer of Local<\(Value.self)> (discriminator \(discriminatorName)) \
            touched the same Local for the same key (\(key)) while computing that key's first value, \
            which would never finish. Compute the initial value without reading or writing this \
            Local; other Locals are fine.
            """
        )
    }

    @usableFromInline
    func missingKeyForWrite() -> Never {
        fatalError(
            """
            swift-locals: cannot write Local<\(Value.self)>: \(discriminatorName).currentKey is nil \
            here, so there is no key to store the value under. Write only where the discriminator \
            has a current key (for example inside the scope that sets your session), or make \
            currentKey return one. Reads without a key return the initializer's value unstored.
            """
        )
    }
}

/// The one backend of a ``Local``, chosen when it is made: each access switches on `kind` once
/// and goes to that backend's own code.
@usableFromInline
struct Backend<Value: Sendable>: @unchecked Sendable {
    // @unchecked: `kind` is `owner` again, unretained; both backends are Sendable.

    /// The backend, owned.
    @usableFromInline let owner: any AnyObject & Sendable
    /// The same backend, by its type and unretained: what an access switches on. (An enum of the
    /// two classes themselves would read the same, but matching a class out of a stored enum
    /// retains it, and a storage that weak references point to retains on the runtime's slow
    /// path: measured, that doubled the cost of a read.)
    @usableFromInline let kind: Kind

    @usableFromInline
    enum Kind {
        /// `.task`: cells keyed by the running task (by the thread outside tasks), with scopes.
        case tasks(Unmanaged<CellStorage<Value>>)
        /// `.thread`: cells keyed by the thread.
        case threads(Unmanaged<CellStorage<Value>>)
        /// A custom discriminator's sessions.
        case sessions(Unmanaged<SessionStorage<Value>>)
    }

    @inlinable
    init(_ cells: CellStorage<Value>) {
        owner = cells
        kind = cells.holdsTasks ? .tasks(Unmanaged.passUnretained(cells)) : .threads(Unmanaged.passUnretained(cells))
    }

    @inlinable
    init(_ sessions: SessionStorage<Value>) {
        owner = sessions
        kind = .sessions(Unmanaged.passUnretained(sessions))
    }

    /// A backend for `discriminator`. Inlinable, so that a custom discriminator's session lookup
    /// is specialized where the Local is made.
    @inlinable
    static func make<D: Discriminator>(
        _ discriminator: D, inheritance: Inheritance, name: String?, initialValue: @escaping @Sendable () -> Value
    ) -> Backend<Value> {
        let facts = LocalFacts(discriminator: D.self, inheritance: inheritance, name: name, initialValue: initialValue)
        switch discriminator.valueStorage.kind {
        case .task:
            return Backend(CellStorage(holdsTasks: true, facts).registered())
        case .thread:
            return Backend(CellStorage(holdsTasks: false, facts).registered())
        case .key:
            return Backend(SessionStorage(discriminator, facts).registered(capturedBySnapshots: true))
        case .carriedKey:
            return Backend(SessionStorage(discriminator, facts).registered(capturedBySnapshots: false))
        }
    }

    /// The Local's description.
    var description: String {
        switch kind {
        case .tasks(let cells), .threads(let cells): cells.takeUnretainedValue().facts.description
        case .sessions(let sessions): sessions.takeUnretainedValue().facts.description
        }
    }
}
