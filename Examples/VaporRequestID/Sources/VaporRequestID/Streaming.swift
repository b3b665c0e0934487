import Locals
import Vapor

/// The work behind `GET /stream/:name`: a body of three lines, `part K for NAME request ID`,
/// produced after the handler has returned.
///
/// Vapor runs a streamed body's callback in a task it starts once the response head is written,
/// outside every scope of the request. The callback still reads `currentRequest.id` (and `user`,
/// which the handler set) and logs with them, because `RequestScopeMiddleware` wraps the body so
/// that its callback runs under a snapshot of the request's values.
enum Streaming {
    static func respond(name: String, logger: Logger) throws -> Response {
        currentRequest.user = name
        logger.info("streaming", metadata: ["name": "\(name)"])
        let body = Response.Body(managedAsyncStream: { writer in
            for part in 1...3 {
                // Yield between parts, so that under load other requests' bodies interleave with
                // this one on the server's threads.
                await Task.yield()
                let id = currentRequest.id ?? "-"
                try await writer.write(.buffer(ByteBuffer(string: "part \(part) for \(name) request \(id)\n")))
                logger.info("part written", metadata: ["name": "\(name)", "part": "\(part)"])
            }
        })
        return Response(status: .ok, headers: ["Content-Type": "text/plain; charset=utf-8"], body: body)
    }
}
