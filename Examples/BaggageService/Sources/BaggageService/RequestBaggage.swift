import Locals
public import LocalsTracing

/// What a service knows about the request the current task is handling.
public struct RequestValues: Sendable {
    /// The tenant the request acts for, when the caller said. Nil otherwise.
    public var tenant: String?
    /// The id that ties together the log lines of one request in every service it passes through:
    /// the caller's, or one the first service generated. Nil outside a request.
    public var requestID: String?

    /// A request's values; both absent by default, as outside a request.
    public init(tenant: String? = nil, requestID: String? = nil) {
        self.tenant = tenant
        self.requestID = requestID
    }
}

/// The request the current task is handling.
///
/// ``BaggageMiddleware`` opens a scope on it around each request, with the values that arrived in
/// the `baggage` header, so any code below reads `currentRequest.tenant` with no parameter
/// passing, in the handler's task and in every child task created there.
public let currentRequest = Local { RequestValues() }

/// The fields that travel between services: `tenant` and `request-id`.
///
/// A received value must pass ``isLogSafe(_:)``: these values go into `key=value` log lines, and
/// a caller must not be able to forge or break one. A value that fails is dropped, as if it had
/// not been sent, and the first service then generates a request id.
public let requestBaggage = LocalsBaggage([
    BaggageField("tenant", of: currentRequest, at: \.tenant, accepting: isLogSafe),
    BaggageField("request-id", of: currentRequest, at: \.requestID, accepting: isLogSafe),
])

/// Whether a received value may go into a log line as it is: 1 to 128 characters, each an ASCII
/// letter, digit, `-`, `_`, `.` or `:`. No spaces, `=` or quotes, so it cannot fake another
/// `key=value` pair. (LocalsBaggage has already refused control characters and line breaks.)
public func isLogSafe(_ text: String) -> Bool {
    (1 ... 128).contains(text.utf8.count)
        && text.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "a") ... UInt8(ascii: "z"), UInt8(ascii: "A") ... UInt8(ascii: "Z"),
                UInt8(ascii: "0") ... UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"),
                UInt8(ascii: "."), UInt8(ascii: ":"):
                true
            default:
                false
            }
        }
}

/// The fields set as attributes of every span the tracer starts: `tenant` and `request.id`, read
/// from ``currentRequest`` in the task that starts the span.
///
/// ```swift
/// LocalsBaggageTracer(requestBaggage, wrapping: tracer, spanAttributes: requestSpanAttributes)
/// ```
public let requestSpanAttributes = [
    LocalField("tenant", of: currentRequest, at: \.tenant),
    LocalField("request.id", of: currentRequest, at: \.requestID),
]
