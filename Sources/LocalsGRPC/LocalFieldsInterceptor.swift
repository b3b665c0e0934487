#if GRPC
public import GRPCCore
public import Locals
public import LocalsTracing
import Instrumentation
import ServiceContextModule

/// A client interceptor that sends chosen Local fields as metadata on every outgoing RPC: the
/// request id as `x-request-id`, other fields under their keys, and, given a ``LocalsBaggage``,
/// W3C baggage as `baggage`.
///
/// ```swift
/// let fields = LocalFieldsInterceptor(
///     id: LocalField("request-id", of: call, at: \.id),
///     sending: [LocalField("tenant", of: call, at: \.tenant)]
/// )
/// try await withGRPCClient(transport: transport, interceptors: [fields]) { client in
///     // Calls made here carry `x-request-id` and `tenant` read from `call` in the calling task.
/// }
/// ```
///
/// Values are read when the call starts, in the task that makes it, so a service handler that
/// calls another service forwards its RPC's id (put ``RequestScopeInterceptor`` on its server).
/// Metadata the caller set is kept: a key already present in the request's metadata is not
/// written again. A field whose Local holds nil, or whose text is not fit for gRPC text metadata
/// (bytes other than printable ASCII, or longer than ``maximumValueBytes``), is left out of the
/// call; the call goes ahead.
public struct LocalFieldsInterceptor: ClientInterceptor {
    /// The longest field value sent, in bytes.
    public static let maximumValueBytes = 4_096

    private let fields: [(key: String, field: LocalField)]
    private let baggage: LocalsBaggage?

    /// An interceptor that sends `id` as `x-request-id` and each of `fields` under its key.
    ///
    /// - Parameters:
    ///   - id: The field that holds the request id, sent as `x-request-id` whatever its key; nil
    ///     to send none.
    ///   - fields: Other fields, each sent under its own key. Keys must be lowercase gRPC text
    ///     metadata keys (`0-9 a-z - _ .`), not ending in `-bin` and not starting with `grpc-`:
    ///     another key stops the program when the interceptor is made, as the list is fixed at
    ///     startup.
    ///   - baggage: An instrument whose fields, and the received baggage it passes through, are
    ///     sent as `baggage`; nil to send none.
    public init(id: LocalField? = nil, sending fields: [LocalField] = [], baggage: LocalsBaggage? = nil) {
        for field in fields {
            precondition(
                Self.isValidKey(field.key),
                "LocalFieldsInterceptor: \(field.key.debugDescription) is not a gRPC text metadata key; use "
                    + "lowercase letters, digits, '-', '_' and '.', not ending in -bin, not starting with grpc-"
            )
        }
        var all: [(key: String, field: LocalField)] = []
        if let id { all.append((RequestScopeInterceptor.requestIDKey, id)) }
        all += fields.map { ($0.key, $0) }
        self.fields = all
        self.baggage = baggage
    }

    /// Adds the fields (and baggage) to the request's metadata, then calls `next`.
    public func intercept<Input: Sendable, Output: Sendable>(
        request: StreamingClientRequest<Input>,
        context: ClientContext,
        next: (StreamingClientRequest<Input>, ClientContext) async throws -> StreamingClientResponse<Output>
    ) async throws -> StreamingClientResponse<Output> {
        var request = request
        let callerKeys = Set(request.metadata.map { $0.key.lowercased() })
        for (key, field) in fields where !callerKeys.contains(key) {
            guard let value = field.currentValue, Self.isValidValue(value) else { continue }
            request.metadata.addString(value, forKey: key)
        }
        if let baggage, !callerKeys.contains(LocalsBaggage.headerName) {
            baggage.inject(ServiceContext.current ?? .topLevel, into: &request.metadata, using: MetadataInjector())
        }
        return try await next(request, context)
    }

    private static func isValidKey(_ key: String) -> Bool {
        let utf8 = key.utf8
        guard !utf8.isEmpty, !key.hasSuffix("-bin"), !key.hasPrefix("grpc-") else { return false }
        return utf8.allSatisfy { byte in
            (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte)
                || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
                || byte == UInt8(ascii: "-") || byte == UInt8(ascii: "_") || byte == UInt8(ascii: ".")
        }
    }

    /// Printable ASCII (space included) within the length limit: what text metadata may hold.
    private static func isValidValue(_ value: String) -> Bool {
        let utf8 = value.utf8
        return !utf8.isEmpty && utf8.count <= maximumValueBytes && utf8.allSatisfy { (0x20...0x7E).contains($0) }
    }
}
#endif
