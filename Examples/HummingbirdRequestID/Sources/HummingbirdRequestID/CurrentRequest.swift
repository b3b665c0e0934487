import Locals

/// What the server knows about the request the current task is handling.
public struct RequestValues: Sendable {
    /// The request's `X-Request-ID`: the client's, or one the server generated. Nil outside a request.
    public var id: String?
    /// Who the request is for, once a handler has found out. Nil until then.
    public var user: String?

    /// Values with the given id and user; both nil by default, as outside a request.
    public init(id: String? = nil, user: String? = nil) {
        self.id = id
        self.user = user
    }
}

/// The request the current task is handling.
///
/// `RequestScopeMiddleware` (from LocalsHummingbird) opens a scope on this `Local` for each
/// request, with `id` set, so any code below it reads `currentRequest.id` with no parameter
/// passing: in the handler's task, in every child task created there (`async let`, task groups,
/// `Task {}`), and in the response body's writer. Outside a request, `id` is nil.
///
/// The handler may also write: `currentRequest.user = name` inside the scope reaches the log lines
/// and the child tasks that come after it, and is dropped when the request ends.
public let currentRequest = Local { RequestValues() }

/// The fields every log line carries: `request-id`, and `user` once a handler has set it.
public let requestFields = [
    LocalField("request-id", of: currentRequest, at: \.id),
    LocalField("user", of: currentRequest, at: \.user),
]
