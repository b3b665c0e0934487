#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import HTTPTypes
public import Hummingbird
public import Instrumentation
public import LocalsTracing

/// Binds the baggage a request arrived with for the rest of the middleware chain.
///
/// The middleware extracts the request's `baggage` header with ``LocalsTracing/LocalsBaggage``
/// and runs the rest of the chain inside `baggage.withValues(extractedFrom:using:)`: the fields
/// are bound into their Locals, where the handler, its child tasks and the log metadata provider
/// read them, and the extracted context is `ServiceContext.current`, so the calls the handler
/// makes carry the fields and every member this service does not know about. `prepare` runs
/// inside the scope before the chain, to fill in what the caller did not send.
///
/// Add it first, so that every middleware after it, Hummingbird's request log included, runs
/// inside the scope:
///
/// ```swift
/// router.add(middleware: BaggageMiddleware(requestBaggage) {
///     if currentRequest.requestID == nil { currentRequest.requestID = newRequestID() }
/// })
/// router.add(middleware: LogRequestsMiddleware(.info))
/// ```
///
/// With Hummingbird's `TracingMiddleware` in front of it, the span that middleware started stays
/// in the context; this one only replaces the baggage with what the request carried. Put
/// `TracingMiddleware` after it instead when the tracer sets span attributes from the Locals
/// (`LocalsBaggageTracer(_:wrapping:spanAttributes:)`): the server span then starts inside the
/// scope and carries the request's fields, and it still continues the caller's trace, which
/// `TracingMiddleware` extracts itself.
public struct BaggageMiddleware<Context: RequestContext>: RouterMiddleware {
    let baggage: LocalsBaggage
    let prepare: @Sendable () -> Void

    /// - Parameters:
    ///   - baggage: The fields to bind.
    ///   - prepare: Runs inside the request's scope before the rest of the chain; its writes to the
    ///     Locals reach everything after it, and outgoing calls.
    public init(_ baggage: LocalsBaggage, prepare: @escaping @Sendable () -> Void = {}) {
        self.baggage = baggage
        self.prepare = prepare
    }

    /// Runs the rest of the chain inside the request's baggage scope, turning a thrown
    /// `HTTPResponseError` into its response there.
    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        try await baggage.withValues(extractedFrom: request.headers, using: HTTPFieldsExtractor()) {
            prepare()
            do {
                return try await next(request, context)
            } catch let error as any HTTPResponseError {
                // Made here, inside the scope, so that whatever the error response logs carries the
                // request's values too.
                return try error.response(from: request, context: context)
            }
        }
    }
}

/// Reads a header from Hummingbird's `HTTPFields`; several lines of one header come back joined by
/// commas, which is how W3C baggage combines them.
public struct HTTPFieldsExtractor: Extractor {
    /// An extractor; it holds nothing.
    public init() {}

    /// The value of the header named `key`, lines joined by commas, or nil when there is none.
    ///
    /// ```swift
    /// HTTPFieldsExtractor().extract(key: "baggage", from: request.headers)
    /// ```
    public func extract(key: String, from carrier: HTTPFields) -> String? {
        HTTPField.Name(key).flatMap { carrier[$0] }
    }
}

/// A new request id: a lowercase UUID.
public func newRequestID() -> String {
    UUID().uuidString.lowercased()
}
