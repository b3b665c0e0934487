import LocalsLogging
import LocalsVapor
public import Vapor

/// Makes the log handler behind the application's logger, given a label and the metadata
/// provider to install (one that reads ``requestFields``).
public typealias LogHandlerMaker =
    @Sendable (_ label: String, _ metadataProvider: Logger.MetadataProvider) -> any LogHandler

/// Writes log lines to standard output, with the request id on each line written for a request.
public let standardOutputLogHandler: LogHandlerMaker = { label, metadataProvider in
    StreamLogHandler.standardOutput(label: label, metadataProvider: metadataProvider)
}

extension Application {
    /// Sets the server up: its logger, then LocalsVapor's `RequestScopeMiddleware` first, Vapor's
    /// route log and error middleware after it, then `GET /hello/:name` and `GET /stream/:name`.
    ///
    /// - Parameters:
    ///   - logLevel: The lowest level logged.
    ///   - makeLogHandler: Where log lines go: standard output by default; tests pass a handler
    ///     that keeps the lines.
    public func configureRequestID(
        logLevel: Logger.Level = .info,
        makeLogHandler: @escaping LogHandlerMaker = standardOutputLogHandler
    ) {
        var logger = Logger(label: "vapor-request-id") { label in
            makeLogHandler(label, .locals(requestFields))
        }
        logger.logLevel = logLevel
        self.logger = logger

        // Replaces Vapor's default list, so that the order is plain to see. Each request gets an id
        // (its valid X-Request-ID, or a new one) stored in `currentRequest.id` inside a scope that
        // lasts until its body is written, and the id back in X-Request-ID. The route log and the
        // error middleware come after it: their lines and error responses carry the id.
        middleware = Middlewares()
        middleware.use(RequestScopeMiddleware(id: \.id, of: currentRequest, logging: requestFields))
        middleware.use(RouteLoggingMiddleware(logLevel: .info))
        middleware.use(ErrorMiddleware.default(environment: environment))

        get("hello", ":name") { req async throws -> String in
            try await Greeting.respond(name: req.parameters.require("name"), logger: req.logger)
        }
        get("stream", ":name") { req async throws -> Response in
            try Streaming.respond(name: req.parameters.require("name"), logger: req.logger)
        }
    }
}
