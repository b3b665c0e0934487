import Locals
import Vapor

/// The work behind `GET /hello/:name`.
///
/// No function here takes the request id: each reads it from ``currentRequest``, in the handler's
/// task or in a child task, and each log line gets it from the logger's metadata provider.
enum Greeting {
    /// The downstream services a greeting consults, one task-group child each.
    static let services = ["profiles", "preferences"]

    static func respond(name: String, logger: Logger) async throws -> String {
        // Vapor runs the handler in a task of its own, inside the middleware's `.shared` scope:
        // this write lands in the request's value, which the children below and every later line
        // of this request see.
        currentRequest.user = name
        logger.info("greeting requested", metadata: ["name": "\(name)"])

        async let sentence = compose(name: name, logger: logger)
        let forwarded = await callServices(logger: logger)
        guard forwarded.allSatisfy({ $0 == currentRequest.id }) else {
            throw Abort(.internalServerError, reason: "A child task lost the request id.")
        }
        return await sentence
    }

    /// Runs in an `async let` child task.
    static func compose(name: String, logger: Logger) async -> String {
        logger.info("composing greeting", metadata: ["name": "\(name)"])
        return "Hello, \(name). Your request id is \(currentRequest.id ?? "-")."
    }

    /// Runs one task-group child per service; each returns the id it would send downstream in
    /// its own `X-Request-ID` header.
    static func callServices(logger: Logger) async -> [String?] {
        await withTaskGroup(of: String?.self) { group in
            for service in services {
                group.addTask {
                    logger.info("calling service", metadata: ["service": "\(service)"])
                    return currentRequest.id
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }
}
