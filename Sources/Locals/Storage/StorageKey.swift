/// The key a ``Local`` stores a value under, whatever discriminator produced it.
@usableFromInline
enum StorageKey: Hashable, Sendable, CustomStringConvertible {
    case task(TaskIdentity)
    case thread(ThreadID)
    case custom(SessionKey)
    /// A custom discriminator's nil key: nothing is stored, but an initializer can still recurse.
    case none

    @usableFromInline
    var description: String {
        switch self {
        case .task(let task): task.description
        case .thread(let thread): thread.description
        case .custom(let key): "\(key.base)"
        case .none: "no key (currentKey is nil)"
        }
    }
}

/// A custom discriminator's key, type-erased. Keys are compared with `==` (through `AnyHashable`),
/// never by hash alone.
@usableFromInline
struct SessionKey: Hashable, @unchecked Sendable {
    // @unchecked: built only from values whose type is `Hashable & Sendable`.
    let base: AnyHashable

    init(_ key: some Hashable & Sendable) {
        base = AnyHashable(key)
    }
}
