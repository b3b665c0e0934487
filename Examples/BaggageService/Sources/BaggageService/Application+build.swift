public import AsyncHTTPClient
public import Hummingbird
public import Logging
public import NIOCore
public import Tracing

/// Makes the log handler behind every logger of a service, given a label and the metadata
/// provider to install (``Logging/Logger/MetadataProvider/requestBaggage``).
public typealias LogHandlerMaker =
    @Sendable (_ label: String, _ metadataProvider: Logger.MetadataProvider) -> any LogHandler

/// Writes log lines to standard output, `tenant` and `request-id` first.
public let standardOutputLogHandler: LogHandlerMaker = { label, metadataProvider in
    ServiceLogHandler(label: label, metadataProvider: metadataProvider)
}

/// An HTTP client for calls to the next service.
///
/// - Parameter tracer: What the client injects through: a `LocalsBaggageTracer`, so that the
///   request's fields and pass-through baggage travel. AsyncHTTPClient injects only through its
///   configured tracer (by default `InstrumentationSystem.tracer` as it is when the client is
///   made), so this is what makes the baggage leave the process.
public func makeNextServiceClient(tracer: (any Tracer)?) -> HTTPClient {
    var configuration = HTTPClient.Configuration()
    configuration.tracing.tracer = tracer
    // As many connections as requests a caller may have in flight, so calls wait for no other.
    configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
        idleTimeout: .seconds(60),
        concurrentHTTP1ConnectionsPerHostSoftLimit: 64
    )
    return HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
}

/// The routes: ``BaggageMiddleware`` first (it generates a request id when none arrived), then,
/// when `tracing` is on, Hummingbird's `TracingMiddleware`, then Hummingbird's request log, then
/// `GET /hello/{name}`.
///
/// - Parameter tracing: Whether each request gets a server span, started through
///   `InstrumentationSystem`'s tracer and continuing the caller's `traceparent`. Off by default:
///   with no tracer that records spans it adds work and nothing to see.
public func buildRouter(
    service: String,
    next: String?,
    client: HTTPClient?,
    tracing: Bool = false
) -> Router<BasicRequestContext> {
    precondition(next == nil || client != nil, "A service with a next service needs a client to call it")
    let nextService = next.flatMap { url in client.map { NextService(url: url, client: $0) } }
    let router = Router()
    router.add(
        middleware: BaggageMiddleware(requestBaggage) {
            if currentRequest.requestID == nil {
                currentRequest.requestID = newRequestID()
            }
        }
    )
    if tracing {
        // After the baggage middleware, so that the server span starts inside the request's
        // scope: a LocalsBaggageTracer reads its span attributes from the Locals when the span
        // starts, and before this middleware they hold nothing yet.
        router.add(middleware: TracingMiddleware())
    }
    // After the baggage middleware, so Hummingbird's own "Request" line carries the values too.
    router.add(middleware: LogRequestsMiddleware(.info))
    router.get("hello/:name") { _, context -> String in
        try await Hello.respond(
            name: context.parameters.require("name"),
            service: service,
            next: nextService,
            logger: context.logger
        )
    }
    return router
}

/// One baggage service.
///
/// - Parameters:
///   - service: The name in its answers and its log lines' label.
///   - configuration: Where to listen. Port 0 picks a free port.
///   - next: The URL of the service to call first, if any (`http://127.0.0.1:8082`).
///   - client: The client that calls `next` (see ``makeNextServiceClient(tracer:)``); the caller
///     owns it and shuts it down after the service stops.
///   - logLevel: The lowest level logged.
///   - makeLogHandler: Where log lines go: standard output by default; tests keep the lines.
///   - tracing: Whether each request gets a server span (see ``buildRouter(service:next:client:tracing:)``).
///   - onServerRunning: Called once the server listens, with its channel.
public func buildApplication(
    service: String = "baggage-service",
    configuration: ApplicationConfiguration,
    next: String? = nil,
    client: HTTPClient? = nil,
    logLevel: Logger.Level = .info,
    makeLogHandler: @escaping LogHandlerMaker = standardOutputLogHandler,
    tracing: Bool = false,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    var logger = Logger(label: service) { label in
        makeLogHandler(label, .requestBaggage)
    }
    logger.logLevel = logLevel
    return Application(
        router: buildRouter(service: service, next: next, client: client, tracing: tracing),
        configuration: configuration,
        onServerRunning: onServerRunning,
        logger: logger
    )
}
