/// A type that a request's id can be stored as, in the Local that the integrations' request
/// middleware (Hummingbird, Vapor, OpenAPI) and gRPC interceptor open a scope on.
///
/// `String` conforms, and so does `String?`, for an id that is nil outside a request:
///
/// ```swift
/// struct RequestValues: Sendable { var id: String? }
/// let request = Local { RequestValues() }
/// // RequestScopeMiddleware(id: \.id, of: request)
/// ```
///
/// A type of your own conforms by making itself from the id's text, which the middleware has
/// already checked (1 to 128 bytes of visible ASCII, `!` through `~`) or made afresh:
///
/// ```swift
/// struct RequestID: RequestIDStorable, CustomStringConvertible {
///     let description: String
///     init(requestID: String) { description = requestID }
/// }
/// ```
public protocol RequestIDStorable: Sendable {
    /// The stored form of the request id `requestID`.
    init(requestID: String)
}

extension String: RequestIDStorable {
    /// The id itself.
    public init(requestID: String) { self = requestID }
}

extension Optional: RequestIDStorable where Wrapped == String {
    /// The id itself.
    public init(requestID: String) { self = requestID }
}
