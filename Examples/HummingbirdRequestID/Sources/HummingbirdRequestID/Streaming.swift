import Hummingbird
import Locals
import Logging
import NIOCore

/// The work behind `GET /stream/{name}`: a body of three lines, `part K for NAME request ID`,
/// produced after the handler has returned.
///
/// Hummingbird writes a response body after the whole middleware chain has returned, in the
/// connection's task and outside every scope the chain opened. The body's writer still reads
/// `currentRequest.id` (and `user`, which the handler set) and logs with them, because
/// `RequestScopeMiddleware` wraps the body to be written under a snapshot of the request's values.
enum Streaming {
    static func respond(name: String, logger: Logger) throws -> Response {
        currentRequest.user = name
        logger.info("streaming", metadata: ["name": "\(name)"])
        let body = ResponseBody { writer in
            for part in 1...3 {
                // Yield between parts, so that under load other requests' bodies interleave with
                // this one on the server's threads.
                await Task.yield()
                let id = currentRequest.id ?? "-"
                try await writer.write(ByteBuffer(string: "part \(part) for \(name) request \(id)\n"))
                logger.info("part written", metadata: ["name": "\(name)", "part": "\(part)"])
            }
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: body)
    }
}
