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
///   `currentKey` returns. A capture asks such Locals' discriminators for their key: once for all
///   the Locals of a discriminator type with no stored properties (every instance of it must give
///   the same key), else Local by Local. Where the key comes from a `@TaskLocal` that snapshots
///   carry, declare ``ValueStorage/perCarriedKey`` instead, and a capture asks none of them.
///
/// A discriminator that wraps ``TaskDiscriminator`` or ``ThreadDiscriminator`` (to log, or to count
/// its calls) forwards ``valueStorage`` too, so that its Locals keep the task or thread storage
/// (values released when the task ends, scopes that children inherit):
///
/// ```swift
/// struct CountingTaskDiscriminator: Discriminator {
///     let inner = TaskDiscriminator()
///     var currentKey: TaskDiscriminator.Key? { inner.currentKey }
///     var valueStorage: ValueStorage { inner.valueStorage }   // .perTask
/// }
/// ```
public protocol Discriminator: Sendable {
    /// The type of key that tells contexts apart.
    associatedtype Key: Hashable & Sendable

    /// The key of the context running now, or nil where this discriminator has none.
    var currentKey: Key? { get }

    /// Where a ``Local`` with this discriminator keeps its values: one per key `currentKey`
    /// returns (the default, ``ValueStorage/perKey``), or the task and thread storage that
    /// ``TaskDiscriminator`` and ``ThreadDiscriminator`` declare. Read once, when a Local is made.
    var valueStorage: ValueStorage { get }
}

extension Discriminator {
    /// One value per key `currentKey` returns, kept until ``Local/discard(key:)`` or
    /// ``Local/reset()`` drops it.
    public var valueStorage: ValueStorage { .perKey }
}

/// Where a ``Local`` keeps its values, as its ``Discriminator`` declares.
public struct ValueStorage: Sendable, Hashable, CustomStringConvertible {
    @usableFromInline
    enum Kind: UInt8, Sendable {
        case task, thread, key, carriedKey
    }

    @usableFromInline let kind: Kind

    init(_ kind: Kind) {
        self.kind = kind
    }

    /// One value per Swift task, released after the task ends, and per thread outside tasks;
    /// scopes publish values to the child tasks created inside them (see ``Inheritance``). The
    /// Local asks the runtime which task runs: the discriminator's `currentKey` is not called.
    /// What ``TaskDiscriminator`` declares.
    public static var perTask: ValueStorage { ValueStorage(.task) }

    /// One value per OS thread, released when the thread exits. The Local asks the system which
    /// thread runs: the discriminator's `currentKey` is not called. What ``ThreadDiscriminator``
    /// declares.
    public static var perThread: ValueStorage { ValueStorage(.thread) }

    /// One value per key the discriminator's `currentKey` returns, compared with `==`, kept until
    /// ``Local/discard(key:)`` or ``Local/reset()`` drops it. The default for custom
    /// discriminators.
    public static var perKey: ValueStorage { ValueStorage(.key) }

    /// One value per key, as ``perKey``, for a discriminator whose `currentKey` depends only on
    /// context that snapshots carry: a `@TaskLocal` registered with
    /// `LocalsSnapshot.carry(_:)`, or a ``CarriedContext``. A snapshot then takes
    /// nothing of such a Local: inside its `run` the carried context is bound again, and the
    /// discriminator gives the captured context's key by itself. So a capture costs nothing per
    /// such Local, however many of them the process has, where with ``perKey`` it asks their
    /// discriminators for their key (once per discriminator type with no stored properties).
    ///
    /// Declare it only where the key is carried: inside a `run`, a Local keyed by anything else
    /// would read and write the session of the context that runs the snapshot, not the one that
    /// captured it.
    ///
    /// ```swift
    /// struct SessionDiscriminator: Discriminator {
    ///     @TaskLocal static var sessionID: String?
    ///     var currentKey: String? { Self.sessionID }
    ///     var valueStorage: ValueStorage { .perCarriedKey }
    /// }
    ///
    /// LocalsSnapshot.carry(SessionDiscriminator.$sessionID)   // once, at startup
    /// ```
    public static var perCarriedKey: ValueStorage { ValueStorage(.carriedKey) }

    public var description: String {
        switch kind {
        case .task: ".perTask"
        case .thread: ".perThread"
        case .key: ".perKey"
        case .carriedKey: ".perCarriedKey"
        }
    }
}

extension Discriminator where Self == TaskDiscriminator {
    /// One value per task; per thread in code that runs outside any task. The default.
    public static var task: TaskDiscriminator { TaskDiscriminator() }
}

extension Discriminator where Self == ThreadDiscriminator {
    /// One value per OS thread. Meant for synchronous code: see ``ThreadDiscriminator``.
    public static var thread: ThreadDiscriminator { ThreadDiscriminator() }
}
