#if Logging
public import Locals
public import Logging

/// swift-log's task-local logger, `Logger.current`, as a context that snapshots carry.
///
/// swift-log keeps its task-local private: `Logger.current` reads it and `withLogger` binds it.
/// Registered once, it makes every ``Locals/LocalsSnapshot`` carry the logger, so that a
/// callback run in a snapshot logs through the request's logger, with its metadata:
///
/// ```swift
/// LocalsSnapshot.carry(.currentLogger)        // once, at startup
///
/// await withLogger(mergingMetadata: ["request-id": "r-1"]) { _ in
///     eventLoop.executeWithLocals {
///         Logger.current.info("done")         // ... request-id=r-1 done
///     }
/// }
/// ```
///
/// `Logger.MetadataProvider.locals(_:)` registers it when it is made, so an application that
/// installs that provider needs no call of its own.
///
/// Like every carried context, a snapshot taken where no `withLogger` is in effect carries
/// swift-log's unbound default logger, and an empty `LocalsSnapshot()` binds that default.
public struct CurrentLogger: CarriedContext, CustomStringConvertible {
    /// The task-local logger. All instances stand for the same one.
    ///
    /// ```swift
    /// LocalsSnapshot.carry(CurrentLogger())
    /// ```
    public init() {}

    /// `Logger.current`, as a snapshot's debug description names it.
    public var description: String { "Logger.current" }

    /// `Logger.current`: the logger bound by the innermost `withLogger`, or swift-log's unbound
    /// default.
    public var currentValue: Logger { Logger.current }

    /// Runs `operation` with `value` bound as `Logger.current` (`withLogger`).
    ///
    /// - Parameters:
    ///   - value: The logger to bind.
    ///   - operation: The code that logs through it.
    public func withValue(_ value: Logger, operation: () -> Void) {
        withLogger(value) { _ in operation() }
    }

    /// Runs `operation` on `isolation` with `value` bound as `Logger.current` (`withLogger`).
    ///
    /// - Parameters:
    ///   - value: The logger to bind.
    ///   - isolation: The caller's actor, which `operation` keeps.
    ///   - operation: The code that logs through it.
    public func withValue(_ value: Logger, isolation: isolated (any Actor)?, operation: () async -> Void) async {
        await withLogger(value) { _ in await operation() }
    }
}

extension CarriedContext where Self == CurrentLogger {
    /// swift-log's task-local logger, `Logger.current`.
    ///
    /// ```swift
    /// LocalsSnapshot.carry(.currentLogger)
    /// ```
    public static var currentLogger: CurrentLogger { CurrentLogger() }
}
#endif
