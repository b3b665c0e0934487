public import _LocalsRuntime  // public: a synchronous scope's binding is inlined into every scope
public import Synchronization

/// Nested synchronous scopes share one runtime binding of the scope chain's task-local: the
/// outermost pushes it, and each scope inside it puts its own link in that binding's storage for
/// its operation and puts the outer link back after. So a task inside a hundred nested
/// synchronous scopes has one binding where it would have a hundred, and every task-local read in
/// there (a discriminator's key, a carried task-local, any `@TaskLocal` of the application) walks
/// past one, not a hundred (the runtime's lookup walks every binding of the task); a nested scope
/// also saves the runtime's push and pop, which take the task's status-record lock.
///
/// Swift promises no way to change a binding's value; this is the one place the library does.
/// What it relies on, and why it holds:
/// - `swift_task_localValueGet` (exported, declared in `_LocalsRuntime`) returns the address of
///   the innermost binding's value, and every later lookup, `Task {}`'s copy and a task-group
///   child's copy read the value from there. Confirmed at first use (`isConfirmed`): a probe
///   binding written through that address reads back through `TaskLocal.get()`; else every
///   scope pushes, as before.
/// - No task may see a binding while its value is swapped, except the task itself and copies
///   made from it. A synchronous operation cannot create an `async let` child. It can create a
///   task-group child (`addTask` is synchronous), but only inside a group's body, and since
///   Swift 6 the runtime copies a binding made inside a group's body into each child it creates
///   there, instead of linking the child to it (`TaskLocal.cpp`: items "created in task group
///   body"): a test pins both. `Task {}` and `Task.immediate` copy. Children created before the
///   binding link below it.
/// - A link names the task whose synchronous scope bound it (`ScopeLink.syncOwner`) only while
///   that scope is open. A scope puts its link in place only where the innermost binding's value
///   is a link that names the running task: that task is then inside the synchronous extent of
///   the scope that bound it (it cannot have left it, or suspended in it), and the binding is
///   that scope's own, the only one of the task holding that link. Another task that copied the
///   link (`Task {}` inside the scope) is not named, and a task's address is not reused while it
///   runs; an asynchronous scope's link, a snapshot run's, and a scope's outside any task (the
///   thread's bindings) name none, so scopes inside them push.
@usableFromInline
enum BindingInPlace {
    /// Whether synchronous scopes may share a binding: the runtime exports the push, pop and
    /// lookup, and answered the probe as expected. Tests can force it off with
    /// `LOCALS_FORCE_FALLBACK=bindingInPlace` (or `taskLocalPush`) in a debug build.
    @usableFromInline static let isConfirmed: Bool = {
        guard ScopeChain.canBind, locals_runtime_has_task_local_get(),
            !TaskRuntime.namesForcedByEnvironment().contains("bindingInPlace")
        else { return false }
        return probe()
    }()

    /// Binds a key of its own to one link, writes another through the address the lookup returns,
    /// and reads it back with `TaskLocal.get()`; puts the first back and unbinds. It runs where a
    /// Local is first made, in a task or on a thread outside any (the thread's bindings); the
    /// runtime keeps both kinds of bindings in the same structure, read by the same lookup.
    private static func probe() -> Bool {
        let key = TaskLocal<ScopeLink>(wrappedValue: ScopeChain.unbound)
        let bound = ScopeLink(localID: 1)
        let written = ScopeLink(localID: 2)
        return withExtendedLifetime((key, bound, written)) {
            let keyAddress = Unmanaged.passUnretained(key).toOpaque()
            ScopeChain.bind(bound, keyAddress: keyAddress)
            defer { locals_runtime_pop_task_local() }
            guard let slot = locals_runtime_task_local_get(keyAddress),
                slot.load(as: Unmanaged<ScopeLink>.self).toOpaque() == Unmanaged.passUnretained(bound).toOpaque()
            else { return false }
            slot.storeBytes(of: Unmanaged.passUnretained(written), as: Unmanaged<ScopeLink>.self)
            let seen = key.get() === written && locals_runtime_task_local_get(keyAddress) == slot
            slot.storeBytes(of: Unmanaged.passUnretained(bound), as: Unmanaged<ScopeLink>.self)
            return seen && key.get() === bound
        }
    }

    /// Runs `operation` with the chain's task-local `key` bound to `link`, which a synchronous
    /// scope of the running task (at `owner`, 0 outside any task) opened; links `link` to the
    /// scope outside it first. Inside another synchronous scope's binding of the same task, puts
    /// `link` in that binding's storage for the operation (no reference taken: the scope holds its
    /// link until it closes); else binds it as `TaskLocal.withValue` does, naming the task in
    /// `link` for the scopes inside.
    @inlinable
    @inline(__always)
    static func withBinding<R>(
        _ link: ScopeLink, owner: UInt, key: TaskLocal<ScopeLink>, _ operation: () -> R
    ) -> R {
        let slot = locals_runtime_task_local_get(Unmanaged.passUnretained(key).toOpaque())
        let outer = slot?.load(as: Unmanaged<ScopeLink>.self)
        link.link(to: outer)
        link.syncOwner.store(owner, ordering: .relaxed)
        defer { link.syncOwner.store(0, ordering: .relaxed) }
        if owner != 0, let slot, let outer, outer._withUnsafeGuaranteedRef({ $0.syncOwner.load(ordering: .relaxed) }) == owner {
            slot.storeBytes(of: Unmanaged.passUnretained(link), as: Unmanaged<ScopeLink>.self)
            defer { slot.storeBytes(of: outer, as: Unmanaged<ScopeLink>.self) }
            return operation()
        }
        return key.withValue(link, operation: operation)
    }
}
