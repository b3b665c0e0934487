import Locals

/// What the server knows about the request the current task is handling.
public struct RequestValues: Sendable {
    /// The request's `X-Request-ID`: the client's, or one the server generated. Nil outside a request.
    public var id: String?
    /// Who the request is for, once a handler has found out. Nil until then.
    public var user: String?

    public init(id: String? = nil, user: String? = nil) {
        self.id = id
        self.user = user
    }
}

/// The request the current task is handling.
///
/// ``RequestIDMiddleware`` opens a scope on this `Local` around the rest of the middleware chain,
/// so any code below it reads `currentRequest.id` with no parameter passing, in the handler's
/// task and in every child task created there (`async let`, task groups, `Task {}`). Outside a
/// request, `id` is nil.
///
/// The handler may also write: `currentRequest.user = name` inside the scope reaches the log lines
/// and the child tasks that come after it, and is dropped when the request ends.
public let currentRequest = Local { RequestValues() }
