/// What a child task created inside a scope sees of the scope's value.
///
/// Values reach child tasks only through scopes (``Local/withValues(_:inheritance:file:line:operation:)``,
/// ``Local/withValue(_:_:inheritance:file:line:operation:)``), as with Swift's `@TaskLocal`: a plain
/// `local.x = v` outside any scope stays in the task that wrote it. Every kind of child created
/// inside a scope inherits by the policy: `async let`, `TaskGroup` and `ThrowingTaskGroup` tasks,
/// discarding task groups, `Task {}` and `Task.immediate`. `Task.detached` never inherits.
/// Tasks created outside any scope start from the Local's initial value under every policy.
///
/// | policy | child's first read | child sees the owner's later writes | owner sees the child's writes |
/// |---|---|---|---|
/// | ``copy`` (default) | the scope's value | no | no |
/// | ``overlay`` | the scope's value | yes, where the child has not written | no |
/// | ``shared`` | the scope's value | yes | yes |
/// | ``fresh`` | the initial value | no | no |
///
/// Inheritance applies to ``TaskDiscriminator`` only. For ``ThreadDiscriminator`` and custom
/// discriminators a scope changes and restores the current key's value, and nothing is inherited.
public enum Inheritance: Sendable, Hashable {
    /// The child starts from a copy of the scope's value as it stands at the child's first touch,
    /// then its writes are its own and the owner's later writes are not seen. A write the owner
    /// makes after creating a child races with that child's first touch: set values before
    /// creating children, or open a nested scope. Python: aiotask-context's `copying_task_factory`.
    case copy
    /// The child reads through to the owner's live scope value for every part it has not written
    /// itself, and writes only to its own layer (Python's `ChainMap`, aiotask-context's
    /// `chainmap_task_factory`). A part is a stored property, or a stored property of one: after
    /// `local.simple = "x"` the child reads its own `simple` and the owner's live everything else,
    /// and `local[dynamicMember: \.inner.name] = "x"` layers just `inner.name`. Property syntax
    /// writes whole properties: `local.list[1] = "x"` reads `list`, changes it and layers all of
    /// `list`. A write through any other key path (an element's, `\.list[1]`; a force-unwrap; a
    /// computed property), `update`, and assigning `value` change what the child sees as a whole:
    /// the child keeps that view as its own value from then on and stops reading through, so that
    /// nothing the owner does to the live value afterwards (shrinking the array, clearing the
    /// optional) can make a child's read trap. `reset()` sends the child back to reading through.
    case overlay
    /// The owner and every child of the scope read and write one value: request-wide mutable
    /// state (aiotask-context's default `task_factory`). Use ``Local/update(_:)`` to change it
    /// atomically; `local.x += 1` is two accesses and can lose updates made in between.
    case shared
    /// Children ignore the scope and start from the initial value, as new threads do with
    /// Python's `threading.local`.
    case fresh
}
