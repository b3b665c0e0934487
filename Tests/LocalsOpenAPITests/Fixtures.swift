#if OpenAPI
import HTTPTypes
import Locals
import LocalsTestSupport
import LocalsLogging
import LocalsOpenAPI
import Logging
import OpenAPIRuntime
import Synchronization

/// What the tests' server knows about the request a task is handling.
struct RequestState: Sendable {
    var id = "-"
    var user: String?
    var tenant: String?
}

/// The request-id Local of the tests.
let request = Local { RequestState() }

/// Another Local that gets a scope per request: a handler's plain writes to it reach its children.
let audit = Local { [String]() }

/// A Local that gets no scope: a handler's plain writes to it stay in the handler's task.
let unscoped = Local { "initial" }

let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]

extension HTTPField.Name {
    static let requestID = HTTPField.Name("X-Request-ID")!
    static let tenant = HTTPField.Name("X-Tenant")!
}

/// The middleware of the tests: the id in `request`, a scope on `audit` too.
func makeMiddleware(logger: Logger? = nil) -> RequestScopeMiddleware {
    RequestScopeMiddleware(id: \.id, of: request, scoping: audit, logging: fields, logger: logger)
}

/// What a handler gives back: a response and its body.
typealias Handler = @Sendable (HTTPRequest, HTTPBody?, ServerRequestMetadata) async throws -> (HTTPResponse, HTTPBody?)

/// Calls `middleware` for a GET with `headers`, as swift-openapi-runtime would, with `handler` as
/// the rest of the chain.
func serve(
    _ middleware: some ServerMiddleware,
    headers: HTTPFields = [:],
    operationID: String = "getGreeting",
    handler: @escaping Handler
) async throws -> (HTTPResponse, HTTPBody?) {
    let request = HTTPRequest(
        method: .get, scheme: "http", authority: "example.com", path: "/greet", headerFields: headers
    )
    return try await middleware.intercept(
        request,
        body: nil,
        metadata: ServerRequestMetadata(),
        operationID: operationID,
        next: handler
    )
}

/// A handler that answers 200 with `body`.
func answering(_ body: @escaping @Sendable () -> HTTPBody?) -> Handler {
    { _, _, _ in (HTTPResponse(status: .ok), body()) }
}

/// The whole of a body, as text.
func text(of body: HTTPBody?) async throws -> String {
    guard let body else { return "<no body>" }
    return try await String(collecting: body, upTo: 1 << 20)
}

/// The body's text, read by a detached task: no values of the caller come along.
func textFromAnotherTask(_ body: HTTPBody?) async throws -> String {
    try await Task.detached { try await text(of: body) }.value
}

/// Chunks made as they are asked for, each by `make(index)` (1-based) when the iterator reaches it:
/// the body of a lazy sequence, which the transport iterates after the middlewares returned.
struct LazyChunks: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk

    let count: Int
    let make: @Sendable (Int) -> String

    func makeAsyncIterator() -> Iterator {
        Iterator(count: count, make: make)
    }

    struct Iterator: AsyncIteratorProtocol {
        let count: Int
        let make: @Sendable (Int) -> String
        var index = 0

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            guard index < count else { return nil }
            index += 1
            await Task.yield()
            return ArraySlice(make(index).utf8)
        }
    }
}

extension LogCapture {
    /// A capture whose loggers put this module's `fields` on every line.
    convenience init() {
        self.init(fields: fields)
    }
}

#endif
