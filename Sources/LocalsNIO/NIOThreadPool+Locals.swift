#if NIO
import Locals
public import NIOCore
public import NIOPosix

extension NIOThreadPool {
    /// Runs `body` on the pool, under a ``Locals/LocalsSnapshot`` taken now, at the call, if the
    /// pool is still active; fails the returned future with `NIOThreadPoolError.ThreadPoolInactive`
    /// otherwise.
    ///
    /// ```swift
    /// let digest = pool.runIfActiveWithLocals(eventLoop: eventLoop) {
    ///     hash(file, salt: request.tenant)     // blocking work that reads the request's Locals
    /// }
    /// ```
    ///
    /// - Parameters:
    ///   - eventLoop: The event loop the returned future completes on.
    ///   - body: The blocking work.
    /// - Returns: A future completed with `body`'s result or error.
    public func runIfActiveWithLocals<T: Sendable>(
        eventLoop: any EventLoop,
        _ body: @escaping @Sendable () throws -> T
    ) -> EventLoopFuture<T> {
        let snapshot = LocalsSnapshot.capture()
        return runIfActive(eventLoop: eventLoop) { try snapshot.run(body) }
    }

    /// Runs `body` on the pool, under a ``Locals/LocalsSnapshot`` taken now, at the call, and
    /// returns its result; throws `NIOThreadPoolError.ThreadPoolInactive` if the pool is not
    /// active.
    ///
    /// ```swift
    /// let digest = try await pool.runIfActiveWithLocals { hash(file, salt: request.tenant) }
    /// ```
    ///
    /// The awaiting task's Locals are not otherwise seen by `body`: it runs on a pool thread,
    /// outside any task.
    ///
    /// - Parameter body: The blocking work.
    /// - Returns: `body`'s result.
    public func runIfActiveWithLocals<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
        let snapshot = LocalsSnapshot.capture()
        return try await runIfActive { try snapshot.run(body) }
    }

    /// Submits `body` to the pool, to run under a ``Locals/LocalsSnapshot`` taken now, at the
    /// call. It gets the pool's `WorkItemState`: `.cancelled` when the pool shut down first.
    ///
    /// ```swift
    /// pool.submitWithLocals { state in
    ///     guard state == .active else { return }
    ///     writeAudit(request.user)
    /// }
    /// ```
    ///
    /// - Parameter body: The work.
    public func submitWithLocals(_ body: @escaping WorkItem) {
        let snapshot = LocalsSnapshot.capture()
        submit { state in snapshot.run { body(state) } }
    }
}
#endif
