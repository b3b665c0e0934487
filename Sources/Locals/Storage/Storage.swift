/// The storage engine of one ``Local``: what every backend shares (the Local's id, initializer,
/// policy and names, and its snapshot operations). The values themselves are in one of two
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
@usableFromInline
class Storage<Value: Sendable>: @unchecked Sendable {
    // @unchecked: every stored property is immutable, or (`ops`) set once before the Local is used.

    /// Never reused by another Local: names this storage in the threads' lookup caches.
    @usableFromInline final let localID = LocalIDs.next()
    final let initialValue: @Sendable () -> Value
    /// The policy of this Local's scopes where the scope names none.
    @usableFromInline final let inheritance: Inheritance
    /// The name the Local was given, for listings.
    final let name: String?
    /// The Local's name, if it has one, then its type, discriminator and policy: made once.
    @usableFromInline final let description: String
    /// The discriminator's type name, for messages.
    final let discriminatorName: String
    /// This Local's snapshot operations (set once, by `registered()`, before the Local is used):
    /// what a context that touched it lists, for snapshots.
    @exclusivity(unchecked) @usableFromInline final var ops: SnapshotOps?

    /// What a storage says about its Local.
    @usableFromInline
    struct About {
        let discriminator: Any.Type
        let inheritance: Inheritance
        let name: String?

        @usableFromInline
        init(discriminator: Any.Type, inheritance: Inheritance, name: String?) {
            self.discriminator = discriminator
            self.inheritance = inheritance
            self.name = name
        }
    }

    @usableFromInline
    init(_ about: About, _ initialValue: @escaping @Sendable () -> Value) {
        self.initialValue = initialValue
        discriminatorName = String(describing: about.discriminator)
        inheritance = about.inheritance
        name = about.name
        let named = about.name.map { "\"\($0)\", " } ?? ""
        description = "Local<\(Value.self)>(\(named)\(discriminatorName), inheritance: .\(about.inheritance))"
    }

    deinit {
        LiveLocals.remove(localID)
    }

    // MARK: The initializer

    /// Runs the initializer for `owner`, stopping the program if it touches the same key again.
    @usableFromInline
    final func makeInitialValue(for owner: OwnerKey) -> Value {
        let context = ThreadContext.current
        let me = ObjectIdentifier(self)
        if context.isInitializing(me, owner) {
            reentrantInitializer(key: owner.description)
        }
        context.initializing.append((me, owner))
        defer {
            if let index = context.initializing.lastIndex(where: { $0.storage == me && $0.key == owner }) {
                context.initializing.remove(at: index)
            }
        }
        return initialValue()
    }

    final func reentrantInitializer(key: String) -> Never {
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
    final func missingKeyForWrite() -> Never {
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

/// The one backend of a ``Local``, chosen when it is made: each access switches on it once and
/// goes to that backend's own code.
@usableFromInline
enum Backend<Value: Sendable>: Sendable {
    /// `.task` and `.thread`.
    case cells(CellStorage<Value>)
    /// A custom discriminator's sessions.
    case sessions(SessionStorage<Value>)

    /// A backend for `discriminator`. Inlinable, so that a custom discriminator's session lookup
    /// is specialized where the Local is made.
    @inlinable
    static func make<D: Discriminator>(
        _ discriminator: D, inheritance: Inheritance, name: String?, initialValue: @escaping @Sendable () -> Value
    ) -> Backend<Value> {
        let about = Storage<Value>.About(discriminator: D.self, inheritance: inheritance, name: name)
        switch discriminator.valueStorage.kind {
        case .task:
            return .cells(CellStorage(holdsTasks: true, about, initialValue).registered())
        case .thread:
            return .cells(CellStorage(holdsTasks: false, about, initialValue).registered())
        case .key:
            return .sessions(SessionStorage(discriminator, about, initialValue).registered())
        }
    }

    /// What both backends share.
    @inlinable
    var storage: Storage<Value> {
        switch self {
        case .cells(let cells): cells
        case .sessions(let sessions): sessions
        }
    }
}
