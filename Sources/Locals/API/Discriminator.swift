/// Decides which context is running now, and so which value a ``Local`` reads and writes.
///
/// A discriminator answers one question: "whose turn is it?" A ``Local`` keeps one value per key
/// the discriminator returns, created lazily by the Local's initializer on the key's first touch.
///
/// swift-locals ships two discriminators:
/// - ``TaskDiscriminator`` (spelled `.task`, the default): one value per Swift task, falling back
///   to one value per thread in code that runs outside any task.
/// - ``ThreadDiscriminator`` (spelled `.thread`): one value per OS thread, like Python's
///   `threading.local`.
///
/// ## Implementing a discriminator
///
/// Write your own to key values by anything that identifies "the current context" in your
/// program: a session, a tenant, a connection. The key must be `Hashable` and `Sendable`; keys are
/// compared with `==`, never by hash alone, so two keys with equal hashes keep separate values.
///
/// ```swift
/// struct SessionDiscriminator: Discriminator {
///     @TaskLocal static var sessionID: String?
///     var currentKey: String? { Self.sessionID }
/// }
///
/// let cart = Local(SessionDiscriminator()) { Cart() }
/// SessionDiscriminator.$sessionID.withValue("s-42") {
///     cart.items.append("book")       // stored under "s-42"
/// }
/// cart.discard(key: "s-42")          // the session ended: release its cart now
/// ```
///
/// Rules for `currentKey`:
/// - It is called on every access, before any lock is taken: keep it cheap. It may use other
///   `Local`s, but not one with this same discriminator (that would call `currentKey` again without
///   end: the program stops with a message naming the discriminator).
/// - Return `nil` where there is no current context. Reads then return the initializer's value
///   without storing it; writes stop the program with a message that names the fix.
/// - A key's value lives until ``Local/discard(key:)`` or ``Local/reset()`` drops it (or the
///   `Local` itself is released). Discard keys whose context has ended, with a key of this
///   discriminator's `Key` type: a key of any other type stops the program, since it could never
///   discard anything.
/// - Inside a ``LocalsSnapshot``'s `run`, the session the snapshot took is the current one, whatever
///   `currentKey` returns.
public protocol Discriminator: Sendable {
    /// The type of key that tells contexts apart.
    associatedtype Key: Hashable & Sendable

    /// The key of the context running now, or nil where this discriminator has none.
    var currentKey: Key? { get }
}

extension Discriminator where Self == TaskDiscriminator {
    /// One value per task; per thread in code that runs outside any task. The default.
    public static var task: TaskDiscriminator { TaskDiscriminator() }
}

extension Discriminator where Self == ThreadDiscriminator {
    /// One value per OS thread. Meant for synchronous code: see ``ThreadDiscriminator``.
    public static var thread: ThreadDiscriminator { ThreadDiscriminator() }
}
