#if OpenAPI
public import HTTPTypes
public import Locals
public import Logging
public import OpenAPIRuntime
import _LocalsHTTPSupport

extension HTTPField.Name {
    /// `X-Request-ID`: the id a client or proxy gives a request, echoed on the response. Internal,
    /// so that it never clashes with the same constant of another module a server imports.
    static let xRequestID = HTTPField.Name("X-Request-ID")!
}

/// A server middleware that gives every request an id and a scope of its own on the Locals you
/// choose, for the whole exchange: the middlewares after it, the operation's handler, the child
/// tasks the handler creates, and the iteration of the response body, which the transport does
/// after the middlewares have returned.
///
/// ```swift
/// struct RequestState: Sendable {
///     var id = "-"
///     var user: String? = nil
/// }
/// let request = Local { RequestState() }
/// let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]
///
/// struct Handler: APIProtocol {
///     func getGreeting(_ input: Operations.GetGreeting.Input) async throws -> Operations.GetGreeting.Output {
///         request.user = input.query.name          // lands in the request's scope
///         return .ok(.init(body: .json(.init(message: "Your request id is \(request.id)."))))
///     }
/// }
///
/// try Handler().registerHandlers(
///     on: transport,
///     middlewares: [RequestScopeMiddleware(id: \.id, of: request, logging: fields)]
/// )
/// ```
///
/// **The id.** The request's `X-Request-ID` when it is 1 to 128 bytes of visible ASCII (no
/// space, no control character); otherwise a new random UUID in lowercase. A malformed id is
/// dropped with a `notice` line that says why (the id itself is not logged). The id is stored at
/// `id` in the request's scope and echoed in the response's `X-Request-ID`.
///
/// **The scopes.** The id's Local gets a scope with the id set, and each Local in `scoping` a scope
/// that starts from its value unchanged. swift-openapi-runtime calls the middlewares after this
/// one, and the handler, in the task that runs this middleware, so that task owns the scopes: a
/// handler's plain write (`request.user = name`) lands in the request's value, and the child tasks
/// it creates afterwards (`async let`, task groups, `Task {}`) inherit it by each Local's policy.
/// A Local you write in a handler but leave out of `scoping` keeps such writes in the
/// connection's task, where no child task sees them.
///
/// **The body.** Once `next` has returned, the middleware takes a `LocalsSnapshot` inside the
/// scopes and wraps the response `HTTPBody` so that each of its chunks is produced under that
/// snapshot: a body made as it is iterated (a lazy sequence, a `map` over a stream) reads the
/// request's values, the handler's writes included, as a child task of the request would. The
/// wrapped body keeps the original's length and iteration behavior.
///
/// **Errors.** swift-openapi-runtime turns every error of the handler and of the middlewares into
/// a `ServerError`. The middleware adds the id to that error's `httpHeaderFields` and wraps its
/// `httpBody` the same way, and rethrows it: an `ErrorHandlingMiddleware` placed before this one
/// answers with the id too (placed after it, it answers with a response that this middleware
/// handles like any other). What a transport makes of an error that reaches it is its own
/// affair, and may carry no `X-Request-ID`.
///
/// **Requests do not share values.** The scopes close when this middleware returns; the body is
/// then produced under the snapshot taken inside them, which holds this request's values only.
///
/// Put it first in `middlewares:`, so that the middlewares after it run inside the scopes. A
/// module that imports both `LocalsOpenAPI` and `LocalsHummingbird` (or `LocalsVapor`) names this
/// one `LocalsOpenAPI.RequestScopeMiddleware`.
public struct RequestScopeMiddleware: ServerMiddleware {
    private let scopes: RequestScopes
    private let logger: Logger?

    /// A middleware that stores the request's id at `id` of `local`, opens a scope on each of
    /// `scoping` as well, and puts `logging` on the lines it logs itself. The id is stored as a
    /// `String`, as a `String?` that is nil outside a request, or as any `RequestIDStorable` type.
    ///
    /// ```swift
    /// struct RequestValues: Sendable { var id: String? }
    /// let request = Local { RequestValues() }
    /// let middleware = RequestScopeMiddleware(id: \.id, of: request)
    /// ```
    ///
    /// - Parameters:
    ///   - id: Where the request's id is stored.
    ///   - local: The Local that holds it; it gets a scope per request.
    ///   - scoping: Other Locals that get a scope per request, so that a handler's plain writes
    ///     to them reach its child tasks and the response body. The id's Local needs no mention.
    ///     A session Local (custom discriminator) gets a scope only where the request has a
    ///     session; without one it reads as outside a session, and the request is served.
    ///   - logging: The fields the middleware's own log lines carry. Install the same fields on
    ///     the application's logger with `Logger.MetadataProvider.locals(_:)` (`LocalsLogging`) so
    ///     that every line of the request carries them.
    ///   - logger: Where the middleware logs a dropped id; nil (the default) for `Logger.current`,
    ///     swift-log's task-local logger, read when the line is logged.
    public init<Value, ID: RequestIDStorable, each Other>(
        id: WritableKeyPath<Value, ID>,
        of local: Local<Value>,
        scoping: repeat Local<each Other>,
        logging: [LocalField] = [],
        logger: Logger? = nil
    ) {
        scopes = RequestScopes(id: id, of: local, scoping: repeat each scoping, fields: logging)
        self.logger = logger
    }

    /// Runs the rest of the chain inside the request's scopes, and returns its response with the
    /// id in `X-Request-ID` and the body wrapped to be produced under those scopes' values.
    ///
    /// - Parameters:
    ///   - request: The request; its `X-Request-ID` is read, untrusted.
    ///   - body: The request's body, passed on unchanged.
    ///   - metadata: The request's metadata, passed on unchanged.
    ///   - operationID: The operation's id.
    ///   - next: The rest of the chain: the middlewares after this one, then the handler.
    /// - Returns: The response of `next`, with the id, and its body wrapped.
    /// - Throws: The error of `next`; a `ServerError` with the id added to its header fields.
    public func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        metadata: ServerRequestMetadata,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        let id = RequestID(incoming: request.headerFields[.xRequestID])
        var (response, responseBody) = try await scopes.run(id: id.value) {
            scopes.logDroppedID(
                id,
                header: "X-Request-ID",
                metadata: ["operation": .string(operationID)],
                on: logger ?? Logger.current
            )
            do {
                let (response, responseBody) = try await next(request, body, metadata)
                // Taken after the handler returned: the request's values with the handler's writes.
                return (response, responseBody?.producingChunks(under: LocalsSnapshot.capture()))
            } catch var error as ServerError {
                error.httpHeaderFields[.xRequestID] = id.value
                error.httpBody = error.httpBody?.producingChunks(under: LocalsSnapshot.capture())
                throw error
            }
        }
        response.headerFields[.xRequestID] = id.value
        return (response, responseBody)
    }
}
#endif
