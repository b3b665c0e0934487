#if NIO
import Locals
public import NIOCore

extension EventLoop {
    /// Runs `task` on the event loop under a ``Locals/LocalsSnapshot`` taken now, at the call: the
    /// task reads the calling task's (or thread's) Locals and carried task-locals, not whatever the
    /// loop's thread holds.
    ///
    /// ```swift
    /// await request.withValue(\.requestID, id) {
    ///     eventLoop.executeWithLocals { log("\(request.requestID)") }   // the request's id
    /// }
    /// ```
    ///
    /// A plain `execute` runs its task outside any task, where a `.task` Local keys values by the
    /// thread: every task on the loop shares one value, and none sees the caller's.
    ///
    /// - Parameter task: The work to run on the event loop.
    public func executeWithLocals(_ task: @escaping @Sendable () -> Void) {
        let snapshot = LocalsSnapshot.capture()
        execute { snapshot.run(task) }
    }

    /// Runs `task` on the event loop under a ``Locals/LocalsSnapshot`` taken at the call, and
    /// completes the returned future with its result or error.
    ///
    /// ```swift
    /// let id = try await eventLoop.submitWithLocals { request.requestID }.get()
    /// ```
    ///
    /// - Parameter task: The work to run on the event loop.
    /// - Returns: A future completed with `task`'s result.
    public func submitWithLocals<T>(_ task: @escaping @Sendable () throws -> T) -> EventLoopFuture<T> {
        let snapshot = LocalsSnapshot.capture()
        return submit { try snapshot.run(task) }
    }

    /// Runs `task` on the event loop under a ``Locals/LocalsSnapshot`` taken at the call, and
    /// completes the returned future as the future `task` returns does.
    ///
    /// ```swift
    /// let saved = eventLoop.flatSubmitWithLocals { store.save(request.order) }
    /// ```
    ///
    /// - Parameter task: The work to run on the event loop.
    /// - Returns: A future completed as `task`'s future is.
    public func flatSubmitWithLocals<T: Sendable>(
        _ task: @escaping @Sendable () -> EventLoopFuture<T>
    ) -> EventLoopFuture<T> {
        let snapshot = LocalsSnapshot.capture()
        return flatSubmit { snapshot.run(task) }
    }

    /// Schedules `task` to run at `deadline` under a ``Locals/LocalsSnapshot`` taken now, at the
    /// call, not when it runs.
    ///
    /// ```swift
    /// eventLoop.scheduleTaskWithLocals(deadline: .now() + .seconds(5)) { log("timed out: \(request.requestID)") }
    /// ```
    ///
    /// - Parameters:
    ///   - deadline: When to run it.
    ///   - task: The work to run on the event loop.
    /// - Returns: The scheduled task, to cancel it or await its result.
    @discardableResult
    public func scheduleTaskWithLocals<T>(
        deadline: NIODeadline,
        _ task: @escaping @Sendable () throws -> T
    ) -> Scheduled<T> {
        let snapshot = LocalsSnapshot.capture()
        return scheduleTask(deadline: deadline) { try snapshot.run(task) }
    }

    /// Schedules `task` to run after `delay` under a ``Locals/LocalsSnapshot`` taken now, at the
    /// call, not when it runs.
    ///
    /// ```swift
    /// eventLoop.scheduleTaskWithLocals(in: .seconds(5)) { log("timed out: \(request.requestID)") }
    /// ```
    ///
    /// - Parameters:
    ///   - delay: How long from now to run it.
    ///   - task: The work to run on the event loop.
    /// - Returns: The scheduled task, to cancel it or await its result.
    @discardableResult
    public func scheduleTaskWithLocals<T>(
        in delay: TimeAmount,
        _ task: @escaping @Sendable () throws -> T
    ) -> Scheduled<T> {
        let snapshot = LocalsSnapshot.capture()
        return scheduleTask(in: delay) { try snapshot.run(task) }
    }
}
#endif
