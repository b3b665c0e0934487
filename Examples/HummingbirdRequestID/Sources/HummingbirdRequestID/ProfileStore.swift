public import NIOCore
import NIOPosix

/// What ``ProfileStore`` knows about a user.
public struct Profile: Sendable {
    public var name: String
    public var salutation: String
}

/// A stand-in for a client library with an `EventLoopFuture` API (a database or cache driver of
/// the futures era): every answer arrives on the client's own event loop, so the caller's `map`
/// and `flatMap` callbacks run there, on that loop's thread and outside any Swift task.
///
/// One store, and so one loop, serves every request, as a real driver's connection pool does:
/// callbacks of unrelated requests take turns on one thread.
public struct ProfileStore: Sendable {
    /// The loop the store answers on.
    public let eventLoop: any EventLoop

    public init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// The store the server uses: one loop of a one-thread group made for it on first use and kept
    /// for the life of the process, as NIO's own `MultiThreadedEventLoopGroup.singleton` is.
    public static let shared = ProfileStore(eventLoop: sharedGroup.next())

    private static let sharedGroup = MultiThreadedEventLoopGroup(numberOfThreads: 1)

    /// Looks up a profile: answers a millisecond later, on ``eventLoop``, as a query would.
    public func profile(for name: String) -> EventLoopFuture<Profile> {
        eventLoop.scheduleTask(in: .milliseconds(1)) {
            Profile(name: name, salutation: "Hello")
        }.futureResult
    }

    /// Runs `work` on ``eventLoop`` a millisecond from now: a second round trip to the store.
    public func later<Value: Sendable>(_ work: @escaping @Sendable () -> Value) -> EventLoopFuture<Value> {
        eventLoop.scheduleTask(in: .milliseconds(1), work).futureResult
    }
}
