public import GRPCCore
public import GRPCNIOTransportHTTP2
public import Logging
import LocalsGRPC
import LocalsLogging

/// Makes a log handler for a label and the metadata provider that adds the call's fields.
public typealias LogHandlerMaker = @Sendable (String, Logger.MetadataProvider) -> any LogHandler

/// The example's logger: every line carries ``callFields`` of the call it was written for.
public func makeLogger(
    _ makeLogHandler: @escaping LogHandlerMaker = { StreamLogHandler.standardOutput(label: $0, metadataProvider: $1) }
) -> Logger {
    Logger(label: "grpc-request-id") { label in makeLogHandler(label, .locals(callFields)) }
}

/// The server: ``EchoService`` behind `RequestScopeInterceptor`, plaintext HTTP/2 on 127.0.0.1
/// and `port` (0 picks a free one; the transport's `listeningAddress` tells which).
public func makeServer(port: Int, logger: Logger) -> GRPCServer<HTTP2ServerTransport.Posix> {
    GRPCServer(
        transport: HTTP2ServerTransport.Posix(
            address: .ipv4(host: "127.0.0.1", port: port),
            transportSecurity: .plaintext
        ),
        services: [EchoService(logger: logger)],
        interceptors: [RequestScopeInterceptor(id: \.id, of: currentCall, logging: callFields, logger: logger)]
    )
}
