public import Hummingbird
import LocalsHummingbird
import LocalsLogging
public import Logging
public import NIOCore

/// Makes the log handler behind every logger of the application, given a label and the
/// metadata provider to install (one that reads ``requestFields``).
public typealias LogHandlerMaker =
    @Sendable (_ label: String, _ metadataProvider: Logger.MetadataProvider) -> any LogHandler

/// Writes log lines to standard output, with the request id on each line written for a request.
public let standardOutputLogHandler: LogHandlerMaker = { label, metadataProvider in
    StreamLogHandler.standardOutput(label: label, metadataProvider: metadataProvider)
}

/// The routes: LocalsHummingbird's `RequestScopeMiddleware` first, then Hummingbird's request
/// log, then `GET /hello/{name}`, `GET /stream/{name}` (a body streamed after the handler
/// returned), and `GET /greet-later/{name}` and `GET /greet-later-naive/{name}`, whose handlers do
/// part of their work in `EventLoopFuture` callbacks on `store`'s event loop.
public func buildRouter(store: ProfileStore = .shared) -> Router<BasicRequestContext> {
    let router = Router()
    // Each request gets an id (its valid X-Request-ID, or a new one) stored in `currentRequest.id`
    // inside a scope that lasts until its body is written, and the id back in X-Request-ID.
    router.add(middleware: RequestScopeMiddleware(id: \.id, of: currentRequest, logging: requestFields))
    // After it, so Hummingbird's own "Request" line carries the id too.
    router.add(middleware: LogRequestsMiddleware(.info))
    router.get("hello/:name") { _, context -> String in
        try await Greeting.respond(name: context.parameters.require("name"), logger: context.logger)
    }
    router.get("stream/:name") { _, context -> Response in
        try Streaming.respond(name: context.parameters.require("name"), logger: context.logger)
    }
    router.get("greet-later/:name") { _, context -> String in
        let name = try context.parameters.require("name")
        return try await GreetLater.withSnapshot(name: name, store: store, logger: context.logger)
    }
    // The same work without a snapshot: kept to show callbacks logging other requests' ids.
    router.get("greet-later-naive/:name") { _, context -> String in
        try await GreetLater.naive(name: context.parameters.require("name"), store: store, logger: context.logger)
    }
    return router
}

/// The request-id server.
///
/// - Parameters:
///   - configuration: Where to listen and what to call the server. Port 0 picks a free port.
///   - logLevel: The lowest level logged.
///   - store: Where the `greet-later` routes look profiles up, and so the event loop their
///     callbacks run on: ``ProfileStore/shared`` by default; tests pass one on a loop of their own.
///   - makeLogHandler: Where log lines go: standard output by default; tests pass a handler that
///     keeps the lines.
///   - onServerRunning: Called once the server listens, with its channel (the bound port is
///     `channel.localAddress?.port`).
public func buildApplication(
    configuration: ApplicationConfiguration = ApplicationConfiguration(
        address: .hostname("127.0.0.1", port: 8080),
        serverName: "request-id-server"
    ),
    logLevel: Logger.Level = .info,
    store: ProfileStore = .shared,
    makeLogHandler: @escaping LogHandlerMaker = standardOutputLogHandler,
    onServerRunning: @escaping @Sendable (any Channel) async -> Void = { _ in }
) -> some ApplicationProtocol {
    var logger = Logger(label: configuration.serverName ?? "request-id-server") { label in
        makeLogHandler(label, .locals(requestFields))
    }
    logger.logLevel = logLevel
    return Application(
        router: buildRouter(store: store),
        configuration: configuration,
        onServerRunning: onServerRunning,
        logger: logger
    )
}
