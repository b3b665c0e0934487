#if Vapor
public import Locals
public import Vapor
import _LocalsHTTPSupport

/// Gives every request an id and a scope of its own on the Locals you choose, for the whole
/// exchange: the middlewares after it, the route handler, the handler's child tasks, and a
/// streamed response body, which Vapor writes after the handler has returned.
///
/// ```swift
/// struct RequestState: Sendable {
///     var id = "-"
///     var user: String? = nil
/// }
/// let request = Local { RequestState() }
/// let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]
///
/// let app = try await Application.make(.production)
/// app.logger = Logger(label: "server") { label in
///     StreamLogHandler.standardOutput(label: label, metadataProvider: .locals(fields))
/// }
/// app.middleware.use(RequestScopeMiddleware(id: \.id, of: request, logging: fields), at: .beginning)
/// app.get("hello", ":name") { req in
///     request.user = req.parameters.get("name")      // lands in the request's value
///     return "Your request id is \(request.id)."
/// }
/// ```
///
/// **The id.** The request's `X-Request-ID` when it is 1 to 128 bytes of visible ASCII (no space,
/// no control character); otherwise a new random UUID in lowercase. A malformed id is dropped with
/// a `notice` line on `req.logger` that says why (the id itself is not logged). The id is stored
/// at `id` in the request's scope, echoed in the response's `X-Request-ID`, and replaces the
/// `request-id` metadata Vapor puts on `req.logger` (Vapor copies the header there unchecked).
///
/// **The scopes, and why `.shared`.** The id's Local gets a scope with the id set, and each Local
/// in `scoping` a scope that starts from its value unchanged. Vapor runs an async route handler in
/// a task of its own, created inside this middleware's scopes: the handler is a child task of the
/// scopes, not their owner. So the scopes are opened with the `.shared` policy by default: the
/// handler's plain writes (`request.user = name`) land in the request's value, where the child
/// tasks it creates (`async let`, task groups, `Task {}`), the middlewares and the response body
/// see them. Under `.shared` a child task's writes are the request's too; `update` changes a value
/// atomically. Pass another `inheritance` (nil: each Local's own policy) and the handler's writes
/// stay in its own task, out of its children's sight.
///
/// **The body.** Once the handler has returned, the middleware takes a `LocalsSnapshot` inside
/// the scopes and wraps a streamed body (`Response.Body(asyncStream:)`,
/// `Response.Body(managedAsyncStream:)`, `Response.Body(stream:)`) so that its callback runs under
/// that snapshot: each chunk it writes reads the request's values, the handler's writes included.
/// Of a callback-based `stream:` body, only the callback's synchronous part runs under it; event
/// loop callbacks it schedules need a snapshot of their own. Vapor's body type has no public way
/// to read a stream back, so the wrapper finds the callback by reflection; a body it does not
/// recognize is left as it is.
///
/// **Order.** Add it at `.beginning`, so that the middlewares after it, Vapor's `ErrorMiddleware`
/// and `RouteLoggingMiddleware` included, run inside the scopes and error responses carry the id.
/// Middleware after it that answers later on an event loop (a future completed by a callback)
/// runs the handler outside the scopes. An error that reaches this middleware is rethrown, and the
/// response Vapor makes for it carries no `X-Request-ID`.
public struct RequestScopeMiddleware: AsyncMiddleware {
    private let scopes: RequestScopes

    /// A middleware that stores the request's id at `id` of `local`, opens a scope on each of
    /// `scoping` as well, and puts `logging` on the lines it logs itself. The id is stored as a
    /// `String`, as a `String?` that is nil outside a request, or as any `RequestIDStorable` type.
    ///
    /// ```swift
    /// struct RequestValues: Sendable { var id: String? }
    /// let request = Local { RequestValues() }
    /// app.middleware.use(RequestScopeMiddleware(id: \.id, of: request), at: .beginning)
    /// ```
    ///
    /// - Parameters:
    ///   - id: Where the request's id is stored.
    ///   - local: The Local that holds it; it gets a scope per request.
    ///   - scoping: Other Locals that get a scope per request, so that a handler's plain writes
    ///     to them reach its child tasks and the response body. The id's Local needs no mention.
    ///     A session Local (custom discriminator) gets a scope only where the request has a
    ///     session; without one it reads as outside a session, and the request is served.
    ///   - inheritance: The policy of the request's scopes: `.shared` (the default) so that the
    ///     handler, which Vapor runs in a task of its own, writes to the request's value; nil for
    ///     each Local's own policy.
    ///   - logging: The fields the middleware's own log lines carry. Install the same fields on
    ///     `app.logger` with `Logger.MetadataProvider.locals(_:)` so that every line of the
    ///     request carries them.
    public init<Value, ID: RequestIDStorable, each Other>(
        id: WritableKeyPath<Value, ID>,
        of local: Local<Value>,
        scoping: repeat Local<each Other>,
        inheritance: Inheritance? = .shared,
        logging: [LocalField] = []
    ) {
        scopes = RequestScopes(
            id: id, of: local, scoping: repeat each scoping, inheritance: inheritance, fields: logging
        )
    }

    /// Runs the rest of the chain inside the request's scopes, and returns its response with a
    /// streamed body wrapped to be written under them and the id in `X-Request-ID`.
    public func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        let id = RequestID(incoming: request.headers.first(name: .xRequestId))
        request.logger[metadataKey: "request-id"] = .string(id.value)
        let response = try await scopes.run(id: id.value) {
            scopes.logDroppedID(id, header: "X-Request-ID", on: request.logger)
            let response = try await next.respond(to: request)
            // Taken after the handler returned: the request's values with the handler's writes.
            if let body = response.body.writingStream(under: LocalsSnapshot.capture()) {
                response.body = body
            }
            return response
        }
        response.headers.replaceOrAdd(name: .xRequestId, value: id.value)
        return response
    }
}
#endif
