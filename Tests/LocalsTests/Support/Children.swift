// The ways to create a child task that may inherit a scope, and running a body in each.

import Testing

/// The ways to create a child task that may inherit a scope.
enum ChildKind: String, CaseIterable, Sendable, CustomTestStringConvertible {
    case unstructuredTask = "Task {}"
    #if compiler(>=6.2)
    case immediateTask = "Task.immediate"
    #endif
    case asyncLet = "async let"
    case taskGroup = "TaskGroup"
    case throwingTaskGroup = "ThrowingTaskGroup"
    case discardingTaskGroup = "DiscardingTaskGroup"
    case throwingDiscardingTaskGroup = "ThrowingDiscardingTaskGroup"

    var testDescription: String { rawValue }

    /// Every kind this toolchain and OS can create: `Task.immediate` only where
    /// `immediateTasksAvailable`.
    static var allCases: [ChildKind] {
        var kinds: [ChildKind] = [.unstructuredTask]
        #if compiler(>=6.2)
        if immediateTasksAvailable { kinds.append(.immediateTask) }
        #endif
        return kinds + [.asyncLet, .taskGroup, .throwingTaskGroup, .discardingTaskGroup, .throwingDiscardingTaskGroup]
    }

    /// The three most common ways to create a child, for the slower tests; the others are checked
    /// by the table test and the model check.
    static let core: [ChildKind] = [.unstructuredTask, .asyncLet, .taskGroup]
}

/// Creates a child of `kind` running `body`, runs `meanwhile` in the calling task while the child
/// runs, then awaits the child and returns its result.
func inChild<R: Sendable>(
    _ kind: ChildKind,
    _ body: @escaping @Sendable () async -> R,
    meanwhile: () async -> Void = {}
) async -> R {
    switch kind {
    case .unstructuredTask:
        let task = Task { await body() }
        await meanwhile()
        return await task.value
    #if compiler(>=6.2)
    case .immediateTask:
        let task = immediateTask { await body() }
        await meanwhile()
        return await task.value
    #endif
    case .asyncLet:
        async let result = body()
        await meanwhile()
        return await result
    case .taskGroup:
        return await withTaskGroup(of: R.self) { group in
            group.addTask { await body() }
            await meanwhile()
            return await group.next()!
        }
    case .throwingTaskGroup:
        return try! await withThrowingTaskGroup(of: R.self) { group in
            group.addTask { await body() }
            await meanwhile()
            return try await group.next()!
        }
    case .discardingTaskGroup:
        let box = Box<R>()
        await withDiscardingTaskGroup { group in
            group.addTask { box.value = await body() }
            await meanwhile()
        }
        return box.value!
    case .throwingDiscardingTaskGroup:
        let box = Box<R>()
        try! await withThrowingDiscardingTaskGroup { group in
            group.addTask { box.value = await body() }
            await meanwhile()
        }
        return box.value!
    }
}

/// Whether this toolchain and OS can start a task with `Task.immediate`: Swift 6.2 added it, and
/// Apple platforms have its runtime from macOS 26 (and the iOS, tvOS, watchOS and visionOS of the
/// same year) on.
let immediateTasksAvailable: Bool = {
    #if compiler(>=6.2)
    if #available(macOS 26.0, iOS 26.0, tvOS 26.0, watchOS 26.0, visionOS 26.0, *) { return true }
    #endif
    return false
}()

#if compiler(>=6.2)
/// `Task.immediate { await body() }`: runs `body` on the calling thread up to its first suspension.
/// Only where `immediateTasksAvailable`.
@discardableResult
func immediateTask<R: Sendable>(_ body: @escaping @Sendable () async -> R) -> Task<R, Never> {
    guard #available(macOS 26.0, iOS 26.0, tvOS 26.0, watchOS 26.0, visionOS 26.0, *) else {
        preconditionFailure("Task.immediate needs macOS 26, iOS 26, tvOS 26, watchOS 26 or visionOS 26")
    }
    return Task.immediate { await body() }
}
#endif

/// Runs `body` in a `Task.detached` and returns its result.
func inDetachedTask<R: Sendable>(_ body: @escaping @Sendable () async -> R) async -> R {
    await Task.detached { await body() }.value
}
