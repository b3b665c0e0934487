#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
public import HTTPTypes
public import Hummingbird
import Locals

extension HTTPField.Name {
    /// `X-Request-ID`: the id a client or proxy gives a request, echoed on the response.
    public static let xRequestID = HTTPField.Name("X-Request-ID")!
}

/// Gives every request an id and binds it to ``currentRequest`` for the rest of the chain.
///
/// The id is the request's `X-Request-ID` header when it is a plausible id (see
/// ``isAcceptable(_:)``), otherwise a new lowercase UUID. The middleware runs the rest of the
/// chain inside `currentRequest.withValue(\.id, id)`, so every log line and every child task of
/// the request sees it, and sets `X-Request-ID` on the response, error responses included.
///
/// Add it before any middleware whose log lines should carry the id:
///
/// ```swift
/// router.add(middleware: RequestIDMiddleware())
/// router.add(middleware: LogRequestsMiddleware(.info))
/// ```
public struct RequestIDMiddleware<Context: RequestContext>: RouterMiddleware {
    public init() {}

    public func handle(
        _ request: Request,
        context: Context,
        next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let id = request.headers[.xRequestID].flatMap { Self.isAcceptable($0) ? $0 : nil } ?? Self.newID()
        var response = try await currentRequest.withValue(\.id, id) {
            do {
                return try await next(request, context)
            } catch let error as any HTTPResponseError {
                // Make the error's response here, so that it carries the header too.
                return try error.response(from: request, context: context)
            }
        }
        response.headers[.xRequestID] = id
        return response
    }

    /// Whether a client's `X-Request-ID` is used as it is: 1 to 128 characters, each an ASCII
    /// letter, digit, `-`, `_`, `.` or `:`. Anything else (spaces, `=`, quotes) could forge or
    /// break a `key=value` log line, so such a request gets a new id instead.
    public static func isAcceptable(_ id: String) -> Bool {
        (1...128).contains(id.utf8.count)
            && id.utf8.allSatisfy { byte in
                switch byte {
                case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
                    UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                    UInt8(ascii: "."), UInt8(ascii: ":"):
                    true
                default:
                    false
                }
            }
    }

    static func newID() -> String {
        UUID().uuidString.lowercased()
    }
}
