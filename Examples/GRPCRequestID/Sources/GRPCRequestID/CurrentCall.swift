public import Locals

/// What the server knows about the call a task is serving.
public struct CallValues: Sendable {
    /// The call's id: from `x-request-id`, or generated. Nil outside a call.
    public var id: String?
    /// The name the call asked about, set by the handler. Nil until then.
    public var name: String?
}

/// The call the running code is serving. `RequestScopeInterceptor` gives every call a scope of
/// its own, so that `currentCall.id` and `currentCall.name` are the call's wherever they are read:
/// in the handler, in its child tasks, and in the response producer grpc-swift runs after the
/// handler returned.
public let currentCall = Local { CallValues() }

/// The fields every log line of a call carries (`name` only once the handler set it).
public let callFields = [
    LocalField("request-id", of: currentCall, at: \.id),
    LocalField("name", of: currentCall, at: \.name),
]
