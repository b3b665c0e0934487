#if NIO
import Locals
public import NIOCore

extension EventLoopFuture {
    /// Like `map`, with `callback` run under a ``Locals/LocalsSnapshot`` taken now, when the
    /// callback is attached: it reads the attaching task's Locals, on the future's event loop.
    ///
    /// ```swift
    /// let line = fetch(url).mapWithLocals { body in "\(request.requestID): \(body)" }
    /// ```
    ///
    /// - Parameter callback: Turns the future's value into the new future's value.
    /// - Returns: A future of `callback`'s result.
    public func mapWithLocals<NewValue>(
        _ callback: @escaping @Sendable (Value) -> NewValue
    ) -> EventLoopFuture<NewValue> {
        let snapshot = LocalsSnapshot.capture()
        return map { value in snapshot.run { callback(value) } }
    }

    /// Like `flatMap`, with `callback` run under a ``Locals/LocalsSnapshot`` taken when it is
    /// attached.
    ///
    /// ```swift
    /// let saved = fetch(url).flatMapWithLocals { body in store.save(body, for: request.user) }
    /// ```
    ///
    /// - Parameter callback: Turns the future's value into the next future.
    /// - Returns: A future completed as `callback`'s future is.
    public func flatMapWithLocals<NewValue: Sendable>(
        _ callback: @escaping @Sendable (Value) -> EventLoopFuture<NewValue>
    ) -> EventLoopFuture<NewValue> {
        let snapshot = LocalsSnapshot.capture()
        return flatMap { value in snapshot.run { callback(value) } }
    }

    /// Like `whenComplete`, with `callback` run under a ``Locals/LocalsSnapshot`` taken when it is
    /// attached.
    ///
    /// ```swift
    /// fetch(url).whenCompleteWithLocals { result in log("\(request.requestID): \(result)") }
    /// ```
    ///
    /// - Parameter callback: Receives the future's result.
    public func whenCompleteWithLocals(_ callback: @escaping @Sendable (Result<Value, any Error>) -> Void) {
        let snapshot = LocalsSnapshot.capture()
        whenComplete { result in snapshot.run { callback(result) } }
    }
}
#endif
