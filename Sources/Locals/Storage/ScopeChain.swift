public import _LocalsRuntime  // public: `value(of:)` is inlined where a carried task-local is registered
public import Synchronization  // public: `syncOwner` is read where a synchronous scope is inlined

/// One link of a context's scope chain: an open scope of some `.task` Local (a `ScopeFrame`),
/// holding the next scope out.
///
/// Every `.task` scope of every Local binds one task-local, `ScopeChain.key`, to its frame, whose
/// `parent` is what the key held before: so the running context's scoped values, of every Local,
/// hang from one reference. A child task inherits that reference (task-local bindings are
/// inherited), finds a Local's scope by walking from it on its first touch, and a snapshot
/// captures it without visiting any Local. A frame is linked when it is published, before any
/// other task can see it, and unlinked when it is recycled, when no other task can see it.
///
/// A link holds its parent without a retain while its scope is open: the parent is what the
/// binding outside the scope's own holds, and bindings nest, so the parent outlives the scope.
/// Whoever may hold the link after that (a child task, a snapshot, a cell reading through it)
/// holds a reference to it, so the scope's close finds it shared and makes the link retain its
/// parent (`keepParent`) while the outer binding still holds that: every link reachable from a
/// held one stays alive, and a scope that nobody kept (the common case) costs no reference
/// counting on its parent. Links made to be held from the start (a snapshot's copied values, an
/// `async` run's boundary) retain their parent when linked.
@usableFromInline
class ScopeLink: LockedBox, @unchecked Sendable {
    /// The Local this scope belongs to (see `LocalIDs`).
    @exclusivity(unchecked) @usableFromInline final var localID: UInt64
    /// The next scope out, of any Local; retained only if `ownsParent` (see above).
    @exclusivity(unchecked) @usableFromInline final var parentLink: Unmanaged<ScopeLink>?
    @exclusivity(unchecked) @usableFromInline final var ownsParent = false
    /// The address of the task whose synchronous scope bound this link, while that scope is open;
    /// 0 otherwise (see `BindingInPlace`). Atomic: a task that copied the link (`Task {}` inside
    /// the scope) may read it while the scope closes.
    @usableFromInline final let syncOwner = Atomic<UInt>(0)

    @inlinable
    init(localID: UInt64) {
        self.localID = localID
    }

    /// The next scope out, of any Local.
    final var parent: ScopeLink? { parentLink?.takeUnretainedValue() }

    /// Links `parent` without retaining it, for a scope being opened in front of it (see above).
    /// The link holds no parent yet.
    @inlinable
    final func link(to parent: Unmanaged<ScopeLink>?) {
        parentLink = parent
    }

    /// Links `parent`, retained, for a link held from the start. The link holds no parent yet.
    @usableFromInline
    final func link(owning parent: ScopeLink?) {
        parentLink = parent.map { Unmanaged.passRetained($0) }
        ownsParent = parentLink != nil
    }

    /// Makes the link retain its parent: its scope closes while some other holder keeps it (see
    /// above). Called by the scope's owner, while the binding outside the scope still holds the
    /// parent.
    @usableFromInline
    final func keepParent() {
        guard !ownsParent, let parentLink else { return }
        _ = parentLink.retain()
        ownsParent = true
    }

    /// Unlinks the parent; returns it if the link retained it, for the caller to release last (a
    /// scope's value may have a deinit).
    @inlinable
    final func unlink() -> ScopeLink? {
        let dropped = parentLink
        parentLink = nil
        guard ownsParent else { return nil }
        ownsParent = false
        return dropped.unsafelyUnwrapped.takeRetainedValue()
    }

    /// Releases the parent, and the chain beyond it as far as nothing else holds it, in a loop: a
    /// snapshot of thousands of values of its own is a chain of as many links, and releasing it
    /// link by link from each one's deinit would nest a call per link (and overflow a small
    /// stack).
    deinit {
        guard ownsParent, var next = parentLink?.takeRetainedValue() else { return }
        // Only this deinit holds `next` when it is uniquely referenced: nobody else can reach it
        // to read its link while it is taken apart. The fence orders what follows after the other
        // holders' last accesses, as `ScopeFrame.recycle` does.
        while isKnownUniquelyReferenced(&next) {
            atomicMemoryFence(ordering: .acquiring)
            guard next.ownsParent, let parent = next.parentLink else { break }
            next.parentLink = nil
            next.ownsParent = false
            next = parent.takeRetainedValue()  // the link just emptied goes, with nothing to release
        }
    }
}

/// The one task-local every `.task` scope binds: the innermost scope of the running context, of
/// any Local. (Also bound by a snapshot's `run`, to a `RunBoundary`.)
@usableFromInline
enum ScopeChain {
    ///
    /// Declared with the class itself rather than an optional, its default a link that is never
    /// bound (`unbound`, read as no scope): a binding's value is destroyed when it goes by the
    /// declared type's witness, and the class's is a release where the generic optional's looked up
    /// the payload's type on every scope.
    @usableFromInline static let key = TaskLocal<ScopeLink>(wrappedValue: unbound)

    /// The key's value where nothing is bound: never bound, never linked; `head` reads it as nil.
    static let unbound = ScopeLink(localID: 0)

    /// The running context's innermost scope, of any Local: read with the runtime's entry point
    /// for task-local values, as `TaskLocal.get()` reads it, without the generic copy through the
    /// value type's metadata that `get()` makes from outside the standard library (a scope reads
    /// the head on every open). Where the runtime lacks the entry point, `get()`.
    static var head: ScopeLink? { head(of: key) }

    /// `head`, not retained: for a reference held no longer than the binding that holds it.
    @usableFromInline
    static var unretainedHead: Unmanaged<ScopeLink>? { unretainedHead(of: key) }

    /// `unretainedHead`, with the key passed in (see `head(of:)`).
    @usableFromInline
    @inline(never)
    static func unretainedHead(of key: TaskLocal<ScopeLink>) -> Unmanaged<ScopeLink>? {
        guard locals_runtime_has_task_local_get() else {
            // The binding holds the head: the reference `get()` made can go at once.
            let link = key.get()
            return link === unbound ? nil : Unmanaged.passUnretained(link)
        }
        guard let value = locals_runtime_task_local_get(Unmanaged.passUnretained(key).toOpaque()) else { return nil }
        return value.load(as: Unmanaged<ScopeLink>?.self)
    }

    /// `head`, with the key passed in: a Local keeps it in a stored property, so that a scope reads
    /// a field instead of running the global's one-time initialization check.
    @inline(never)
    static func head(of key: TaskLocal<ScopeLink>) -> ScopeLink? {
        guard locals_runtime_has_task_local_get() else {
            let link = key.get()
            return link === unbound ? nil : link
        }
        guard let value = locals_runtime_task_local_get(Unmanaged.passUnretained(key).toOpaque()) else { return nil }
        return value.load(as: ScopeLink.self)  // bound links are never nil (see `key`)
    }

    /// `taskLocal`'s value for the running context, read as `head` reads the chain's key: by the
    /// runtime's entry point, with the copy specialized where `Value` is concrete (a carried
    /// task-local is read on every capture); `unbound` where nothing binds it. Where the runtime
    /// lacks the entry point, `get()`. (A binding holds its value as the task-local's declared
    /// type, under the task-local's address as key: what `TaskLocal.get()` asks for.)
    @inlinable
    static func value<Value>(of taskLocal: TaskLocal<Value>, unbound: @autoclosure () -> Value) -> Value {
        guard locals_runtime_has_task_local_get() else { return taskLocal.get() }
        guard let value = locals_runtime_task_local_get(Unmanaged.passUnretained(taskLocal).toOpaque()) else {
            return unbound()
        }
        return value.load(as: Value.self)
    }

    /// Whether the runtime exports the task-local push and pop, which bind without a closure to
    /// nest in (tests can force the nesting fallback with `LOCALS_FORCE_FALLBACK=taskLocalPush` in a
    /// debug build).
    static let canBind =
        locals_runtime_has_task_local_push() && !TaskRuntime.namesForcedByEnvironment().contains("taskLocalPush")

    /// Binds `key` (the chain's key) to `link` for the running task or thread, as `key.withValue`
    /// does before its operation, through the same runtime entry point; `SnapshotRun.unbind()`
    /// removes it. Only where `canBind`.
    ///
    /// The binding is declared with the type `ScopeLink` rather than the key's `ScopeLink?`: the
    /// same bits (a link is never bound as nil here), and the runtime destroys it when the
    /// binding goes through the class's own witness, a release, instead of the generic optional's,
    /// which looked up the payload's type on every scope.
    @usableFromInline
    static func bind(_ link: ScopeLink, key: TaskLocal<ScopeLink>) {
        bind(link, keyAddress: Unmanaged.passUnretained(key).toOpaque())
    }

    /// `bind(link, key: key)`, with no reference to the key taken around the call.
    static func bind(_ link: ScopeLink, keyAddress: UnsafeMutableRawPointer) {
        bind(link, keyAddress: keyAddress, linkType: linkType)
    }

    /// `bind(link, keyAddress:)`, with the link type's metadata passed in: a caller that binds
    /// often keeps both (`ThreadContext.chainKeyAddress` and `chainLinkType`), since each global
    /// read here is a call to the one-time initialization check.
    static func bind(_ link: ScopeLink, keyAddress: UnsafeMutableRawPointer, linkType: UnsafeRawPointer) {
        var taken = Unmanaged.passRetained(link).toOpaque()  // the binding's reference
        withUnsafeMutablePointer(to: &taken) { pointer in
            locals_runtime_push_task_local(keyAddress, pointer, linkType)
        }
    }

    /// `key`'s address, which never changes (the key lives as long as the process).
    nonisolated(unsafe) static let keyAddress = Unmanaged.passUnretained(key).toOpaque()

    /// Type metadata is immutable once made: sharing the pointer is safe.
    nonisolated(unsafe) static let linkType = unsafeBitCast(ScopeLink.self as Any.Type, to: UnsafeRawPointer.self)

    /// `find`, not retained: for a chain some caller holds (a run's, held by its snapshot).
    static func find(_ localID: UInt64, from head: Unmanaged<ScopeLink>?) -> Unmanaged<ScopeLink>? {
        var link = head
        while let current = link {
            let (id, parent) = current._withUnsafeGuaranteedRef { ($0.localID, $0.parentLink) }
            if id == localID {
                return current
            }
            link = parent
        }
        return nil
    }

    /// The innermost scope of the Local `localID` in the chain that starts at `head`. (Run
    /// boundaries have id 0, which no Local has: a walk passes them, into the captured chain.)
    static func find(_ localID: UInt64, from head: ScopeLink?) -> ScopeLink? {
        var link = head
        while let current = link {
            if current.localID == localID {
                return current
            }
            link = current.parent
        }
        return nil
    }
}
