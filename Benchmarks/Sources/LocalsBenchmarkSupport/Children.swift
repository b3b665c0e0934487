// Child tasks for the child rows: every tool times a child's reads inside the child, so that the
// loop runs in the task whose reads the row is about.

/// Runs `body` in a new task-group child of the running task, created inside whatever scope the
/// caller has open, and returns what it returns.
///
/// `body` is a closure literal at each use holding the whole timing loop, so that the loop holds
/// the measured code itself: the child calls `body` once.
public func inChild<R: Sendable>(_ body: @escaping @Sendable () -> R) async -> R {
    await withTaskGroup(of: R.self) { group in
        group.addTask { body() }
        return await group.next()!
    }
}

/// ``inChild(_:)`` with an `async let` child: a task the runtime makes in its parent's stack
/// allocator rather than as a heap object of its own, which the library keys differently.
public func inAsyncLetChild<R: Sendable>(_ body: @escaping @Sendable () -> R) async -> R {
    async let result = body()
    return await result
}
