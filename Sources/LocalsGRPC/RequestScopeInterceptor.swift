#if GRPC
public import GRPCCore
public import Locals
public import LocalsTracing
public import Logging
import _LocalsHTTPSupport

/// A server interceptor that gives every RPC an id and a scope of its own on the Locals you
/// choose, for the whole RPC: the interceptors after it, the handler, the handler's child tasks,
/// and the response's producer, which grpc-swift runs after the handler has returned.
///
/// ```swift
/// struct CallState: Sendable {
///     var id = "-"
///     var user: String? = nil
/// }
/// let call = Local { CallState() }
/// let fields = [LocalField("request-id", of: call, at: \.id), LocalField("user", of: call, at: \.user)]
///
/// let server = GRPCServer(
///     transport: transport,
///     services: [EchoService()],
///     interceptors: [RequestScopeInterceptor(id: \.id, of: call, logging: fields)]
/// )
/// // In a handler: `call.id` is the RPC's id; `call.user = name` lands in the RPC's scope and
/// // is read by its child tasks and by every message its response's producer writes.
/// ```
///
/// **The id.** The request's `x-request-id` metadata when it is 1 to 128 bytes of visible ASCII
/// (no space, no control character); otherwise a new random UUID in lowercase. A malformed id is
/// dropped with a `notice` line on `logger` that says why (the id itself is not logged); nothing
/// an incoming RPC sends stops the server. The id is stored at `id` in the RPC's scope and echoed
/// in the response's initial metadata as `x-request-id`, or in the status's metadata when the
/// RPC fails with an `RPCError` (or an `RPCErrorConvertible` error) before a response. Other
/// errors are rethrown: the status grpc-swift makes for them carries no `x-request-id`.
///
/// **The scopes.** The id's Local gets a scope with the id set, and each Local in `scoping` a
/// scope that starts from its value unchanged. grpc-swift runs the interceptors after this one and
/// the handler in the task that runs this interceptor, so that task owns the scopes: a handler's
/// plain write (`call.user = name`) lands in the RPC's value, and the child tasks it creates
/// afterwards (`async let`, task groups, `Task {}`) inherit it by each Local's policy.
///
/// **The producer.** A `StreamingServerResponse` carries a producer that grpc-swift runs once the
/// handler (and this interceptor) returned. The interceptor takes a `LocalsSnapshot` inside the
/// scopes after the handler returned, and wraps the producer so that it runs under it: every
/// message it writes reads the RPC's values, the handler's writes included, as a child task of
/// the RPC would. A single response's metadata is kept; `x-request-id` is added to it.
///
/// **Baggage.** Given a ``LocalsBaggage``, the interceptor binds the fields of the request's
/// `baggage` metadata into their Locals (and the rest into `ServiceContext.current`, for outgoing
/// calls to forward) around the same scopes, by the rules of
/// `LocalsBaggage/withValues(extractedFrom:using:isolation:operation:)`; the id scope is opened
/// inside it, so that the validated id wins over a baggage member for the same value.
///
/// **RPCs do not share values.** The scopes close when this interceptor returns the response; the
/// producer then runs under the snapshot taken inside them, which holds this RPC's values only.
///
/// Put it first in the server's interceptors, so that those after it run inside the scopes.
public struct RequestScopeInterceptor: ServerInterceptor {
    /// The metadata key of the request id, lowercase as gRPC metadata keys are.
    public static let requestIDKey = "x-request-id"

    private let scopes: RequestScopes
    private let baggage: LocalsBaggage?
    private let logger: Logger

    /// An interceptor that stores the RPC's id at `id` of `local`, opens a scope on each of
    /// `scoping` as well, and puts `logging` on the lines it logs itself. The id is stored as a
    /// `String`, as a `String?` that is nil outside an RPC, or as any `RequestIDStorable` type.
    ///
    /// ```swift
    /// struct CallValues: Sendable { var id: String? }
    /// let call = Local { CallValues() }
    /// let interceptor = RequestScopeInterceptor(id: \.id, of: call)
    /// ```
    ///
    /// - Parameters:
    ///   - id: Where the RPC's id is stored.
    ///   - local: The Local that holds it; it gets a scope per RPC.
    ///   - scoping: Other Locals that get a scope per RPC, so that a handler's plain writes to them
    ///     reach its child tasks and the response's producer. The id's Local needs no mention. A
    ///     session Local (custom discriminator) gets a scope only where a session is current.
    ///   - logging: The fields the interceptor's own log lines carry. Install the same fields on
    ///     the server's logger with `Logger.MetadataProvider.locals(_:)` so that every line of the
    ///     RPC carries them.
    ///   - baggage: The W3C baggage instrument whose fields are read from the `baggage` metadata,
    ///     or nil to leave that metadata alone.
    ///   - logger: Where a dropped `x-request-id` is reported.
    public init<Value, ID: RequestIDStorable, each Other>(
        id: WritableKeyPath<Value, ID>,
        of local: Local<Value>,
        scoping: repeat Local<each Other>,
        logging: [LocalField] = [],
        baggage: LocalsBaggage? = nil,
        logger: Logger = Logger(label: "LocalsGRPC")
    ) {
        scopes = RequestScopes(id: id, of: local, scoping: repeat each scoping, fields: logging)
        self.baggage = baggage
        self.logger = logger
    }

    /// Runs the rest of the chain inside the RPC's scopes, and returns its response with the
    /// producer wrapped to run under them and the id in `x-request-id`.
    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingServerRequest<Input>,
        context: ServerContext,
        next: @Sendable (StreamingServerRequest<Input>, ServerContext) async throws -> StreamingServerResponse<Output>
    ) async throws -> StreamingServerResponse<Output> {
        let incoming = request.metadata[stringValues: Self.requestIDKey].first(where: { _ in true })
        let id = _LocalsHTTPSupport.RequestID(incoming: incoming)
        // A local function, not a closure: it captures `next`, which may not escape.
        func inScopes() async throws -> StreamingServerResponse<Output> {
            try await scopes.run(id: id.value) {
                scopes.logDroppedID(
                    id,
                    header: Self.requestIDKey,
                    metadata: ["method": "\(context.descriptor)"],
                    on: logger
                )
                var response: StreamingServerResponse<Output>
                do {
                    response = try await next(request, context)
                } catch let error as RPCError {
                    // Made here so that the status carries the id like any response.
                    response = StreamingServerResponse(error: error)
                } catch let error as any RPCErrorConvertible {
                    response = StreamingServerResponse(error: RPCError(error))
                }
                // Taken after the handler returned: the RPC's values with the handler's writes.
                let snapshot = LocalsSnapshot.capture()
                if case .success(var contents) = response.accepted {
                    let producer = contents.producer
                    contents.producer = { writer in
                        try await snapshot.run { try await producer(writer) }
                    }
                    response.accepted = .success(contents)
                }
                return response
            }
        }
        var response: StreamingServerResponse<Output>
        if let baggage {
            response = try await baggage.withValues(
                extractedFrom: request.metadata,
                using: MetadataExtractor(),
                operation: inScopes
            )
        } else {
            response = try await inScopes()
        }
        response.metadata.replaceOrAddString(id.value, forKey: Self.requestIDKey)
        return response
    }
}
#endif
