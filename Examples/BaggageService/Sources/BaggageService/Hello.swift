import AsyncHTTPClient
import Hummingbird
import Locals
import Logging
import NIOCore

/// The work behind `GET /hello/{name}`.
///
/// Nothing here takes the tenant or the request id: each reads them from ``currentRequest``, and
/// each log line gets them from the logger's metadata provider. The outgoing call takes them from
/// the Local too, through the tracer the HTTP client injects with.
enum Hello {
    static func respond(name: String, service: String, next: NextService?, logger: Logger) async throws -> String {
        logger.info("hello requested", metadata: ["name": "\(name)"])
        let mine = "\(service): Hello, \(name). \(describeRequest())"
        guard let next else { return mine }
        // The call runs in a child task: it inherits the request's values, so its baggage header and
        // its log line carry them.
        async let downstream = next.hello(name: name, logger: logger)
        let answer = try await downstream
        logger.info("next service answered", metadata: ["name": "\(name)"])
        return mine + "\n" + answer
    }

    /// `tenant=acme request-id=r-1`, with `-` for a value the request does not have.
    static func describeRequest() -> String {
        let request = currentRequest.value
        return "tenant=\(request.tenant ?? "-") request-id=\(request.requestID ?? "-")"
    }
}

/// The service a request is passed on to: `GET <url>/hello/{name}`.
struct NextService: Sendable {
    let url: String
    let client: HTTPClient

    func hello(name: String, logger: Logger) async throws -> String {
        logger.info("calling next service", metadata: ["name": "\(name)", "next": "\(url)"])
        let response = try await client.execute(HTTPClientRequest(url: "\(url)/hello/\(name)"), timeout: .seconds(30))
        let body = String(buffer: try await response.body.collect(upTo: 1 << 20))
        guard response.status == .ok else {
            throw HTTPError(.badGateway, message: "\(url) answered \(response.status.code): \(body)")
        }
        return body
    }
}
