#if OpenAPI
#if canImport(FoundationEssentials)
public import FoundationEssentials
#else
public import Foundation
#endif
public import HTTPTypes
public import Locals
public import OpenAPIRuntime

/// A client middleware that sends chosen Local fields on every outgoing request, as headers, read
/// in the task that calls the operation.
///
/// ```swift
/// struct RequestState: Sendable {
///     var id = "-"
///     var tenant: String? = nil
/// }
/// let request = Local { RequestState() }
///
/// let client = Client(
///     serverURL: try Servers.Server1.url(),
///     transport: transport,
///     middlewares: [
///         FieldHeadersMiddleware(
///             requestID: LocalField("request-id", of: request, at: \.id),   // as X-Request-ID
///             fields: [LocalField("X-Tenant", of: request, at: \.tenant)]   // as X-Tenant, while set
///         )
///     ]
/// )
/// ```
///
/// **The mapping.**
/// - `requestID` is sent as `X-Request-ID`, whatever its key: a service that runs
///   ``RequestScopeMiddleware`` then continues the caller's id, so that the log lines of both
///   carry the same one.
/// - Each field of `fields` is sent under its key as the header name, as it is (name the field
///   `X-Tenant`, not `tenant`, for an `X-Tenant` header). A key must be a valid header name (a
///   token: letters, digits, `-` and a few other symbols; no space, no colon): a key that is not
///   is a mistake in the program, and stops it when the middleware is made, with a message that
///   names the key.
/// - A field whose value is nil (an optional attribute while unset) is left out; any other value
///   is sent as its `description`, with bytes that a header value may not hold (line breaks,
///   control characters) turned into spaces.
/// - Outside a request, a field reads its Local's value outside any scope: an id declared
///   `var id = "-"` sends `X-Request-ID: -`; declare it `var id: String?` to send none there.
/// - A header that the request already has is left as it is: one set by the operation's input,
///   by the caller or by a middleware before this one wins over the field. So does the first of
///   two fields sent under the same name.
///
/// **Where fields are read.** The generated client runs its middlewares in the task that calls
/// the operation, so each field is read there, as a plain read of its Local: inside a request's
/// scope, the request's values. Put this middleware before any middleware that moves the call to
/// another task (a retry scheduled on a queue), or take a `LocalsSnapshot` there.
public struct FieldHeadersMiddleware: ClientMiddleware {
    private let headers: [(name: HTTPField.Name, field: LocalField)]

    /// A middleware that sends `requestID` as `X-Request-ID` and each of `fields` under its key.
    ///
    /// - Parameters:
    ///   - requestID: The field sent as `X-Request-ID`, whatever its key; nil to send none.
    ///   - fields: Fields sent under their keys as header names. Each key must be a valid HTTP
    ///     header name; the program stops here, naming the key, if one is not.
    public init(requestID: LocalField? = nil, fields: [LocalField] = []) {
        var headers: [(name: HTTPField.Name, field: LocalField)] = []
        if let requestID {
            headers.append((.xRequestID, requestID))
        }
        for field in fields {
            guard let name = HTTPField.Name(field.key) else {
                fatalError(
                    """
                    FieldHeadersMiddleware: the field key "\(field.key)" is not a valid HTTP header name; \
                    name the field with a token such as "X-Tenant" (letters, digits, "-"; no space, no colon)
                    """
                )
            }
            headers.append((name, field))
        }
        self.headers = headers
    }

    /// Adds the fields that the request does not have yet as headers, read now, then passes it on.
    ///
    /// - Parameters:
    ///   - request: The outgoing request.
    ///   - body: Its body, passed on unchanged.
    ///   - baseURL: The server's URL, passed on unchanged.
    ///   - operationID: The operation's id.
    ///   - next: The rest of the chain: the middlewares after this one, then the transport.
    /// - Returns: The response of `next`, unchanged.
    /// - Throws: The error of `next`, unchanged.
    public func intercept(
        _ request: HTTPRequest,
        body: HTTPBody?,
        baseURL: URL,
        operationID: String,
        next: @Sendable (HTTPRequest, HTTPBody?, URL) async throws -> (HTTPResponse, HTTPBody?)
    ) async throws -> (HTTPResponse, HTTPBody?) {
        var request = request
        for (name, field) in headers where request.headerFields[name] == nil {
            if let value = field.currentValue {
                request.headerFields[name] = value
            }
        }
        return try await next(request, body, baseURL)
    }
}
#endif
