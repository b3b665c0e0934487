#if Hummingbird
public import HTTPTypes
public import Hummingbird
public import Locals
import Logging
import _LocalsHTTPSupport

extension HTTPField.Name {
    /// `X-Request-ID`: the id a client or proxy gives a request, echoed on the response.
    public static let xRequestID = HTTPField.Name("X-Request-ID")!
}

/// Gives every request an id and a scope of its own on the Locals you choose, for the whole
/// exchange: the middlewares after it, the handler, the handler's child tasks, and the writing
/// of the response body, which Hummingbird does after the handler has returned.
///
/// ```swift
/// struct RequestState: Sendable {
///     var id = "-"
///     var user: String? = nil
/// }
/// let request = Local { RequestState() }
/// let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]
///
/// let router = Router()
/// router.add(middleware: RequestScopeMiddleware(id: \.id, of: request, logging: fields))
/// router.add(middleware: LogRequestsMiddleware(.info))     // after it: its line has the id
/// router.get("hello/:name") { _, context in
///     request.user = try context.parameters.require("name")   // lands in the request's scope
///     return "Your request id is \(request.id)."
/// }
///
/// var logger = Logger(label: "server") { label in
///     StreamLogHandler.standardOutput(label: label, metadataProvider: .locals(fields))
/// }
/// let app = Application(router: router, logger: logger)
/// ```
///
/// **The id.** The request's `X-Request-ID` when it is 1 to 128 bytes of visible ASCII (no
/// space, no control character); otherwise a new random UUID in lowercase. A malformed id is
/// dropped with a `notice` line on `context.logger` that says why (the id itself is not logged).
/// The id is stored at `id` in the request's scope and echoed in the response's `X-Request-ID`,
/// error responses made from an `HTTPResponseError` (a 404, an `HTTPError`) included.
///
/// **The scopes.** The id's Local gets a scope with the id set, and each Local in `scoping` a scope
/// that starts from its value unchanged. Hummingbird runs the rest of the chain and the handler in
/// the task that runs this middleware, so that task owns the scopes: a handler's plain write
/// (`request.user = name`) lands in the request's value, and the child tasks it creates afterwards
/// (`async let`, task groups, `Task {}`) inherit it by each Local's policy. A Local you write in a
/// handler but leave out of `scoping` keeps such writes in the connection's task, where no child
/// task sees them.
///
/// **The body.** Once the handler has returned, the middleware takes a `LocalsSnapshot` inside
/// the scopes and wraps the response body so that it is written under that snapshot: a body
/// produced after the handler returned, or streamed, reads the request's values, the handler's
/// writes included, as a child task of the request would.
///
/// **Requests do not share values.** The scopes close when this middleware returns the response;
/// the body is then written under the snapshot taken inside them, which holds this request's
/// values only. The next request of a keep-alive connection opens scopes of its own.
///
/// Add it first, so that the middlewares after it (Hummingbird's request log included) run inside
/// the scopes. Errors other than `HTTPResponseError` are rethrown: the response Hummingbird makes
/// for them carries no `X-Request-ID`.
public struct RequestScopeMiddleware<Context: RequestContext>: RouterMiddleware {
    private let scopes: RequestScopes

    /// A middleware that stores the request's id at `id` of `local`, opens a scope on each of
    /// `scoping` as well, and puts `logging` on the lines it logs itself. The id is stored as a
    /// `String`, as a `String?` that is nil outside a request, or as any `RequestIDStorable` type.
    ///
    /// ```swift
    /// struct RequestValues: Sendable { var id: String? }
    /// let request = Local { RequestValues() }
    /// router.add(middleware: RequestScopeMiddleware(id: \.id, of: request))
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
    ///     the application's logger with `Logger.MetadataProvider.locals(_:)` so that every line
    ///     of the request carries them.
    public init<Value, ID: RequestIDStorable, each Other>(
        id: WritableKeyPath<Value, ID>,
        of local: Local<Value>,
        scoping: repeat Local<each Other>,
        logging: [LocalField] = []
    ) {
        scopes = RequestScopes(id: id, of: local, scoping: repeat each scoping, fields: logging)
    }

    /// Runs the rest of the chain inside the request's scopes, and returns its response with the
    /// body wrapped to be written under them and the id in `X-Request-ID`.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let id = _LocalsHTTPSupport.RequestID(incoming: request.headers[.xRequestID])
        var response = try await scopes.run(id: id.value) {
            scopes.logDroppedID(id, header: "X-Request-ID", on: context.logger)
            var response: Response
            do {
                response = try await next(request, context)
            } catch let error as any HTTPResponseError {
                // Made here, inside the scopes, so that it carries the header like any response.
                response = try error.response(from: request, context: context)
            }
            // Taken after the handler returned: the request's values with the handler's writes.
            let snapshot = LocalsSnapshot.capture()
            let body = response.body
            response.body = ResponseBody(contentLength: body.contentLength) { writer in
                try await snapshot.run { try await body.write(writer) }
            }
            return response
        }
        response.headers[.xRequestID] = id.value
        return response
    }
}
#endif
