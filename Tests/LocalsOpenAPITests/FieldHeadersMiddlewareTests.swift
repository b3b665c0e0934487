#if OpenAPI
#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
import HTTPTypes
import Locals
import LocalsOpenAPI
import OpenAPIRuntime
import Testing

/// The tests' client middleware: the id as `X-Request-ID`, the tenant and the user under their keys.
let clientMiddleware = FieldHeadersMiddleware(
    requestID: LocalField("request-id", of: request, at: \.id),
    fields: [LocalField("X-Tenant", of: request, at: \.tenant), LocalField("X-User", of: request, at: \.user)]
)

/// The header fields `middleware` sends for a request that has `headers`, as a transport sees them.
func sentHeaders(_ middleware: FieldHeadersMiddleware = clientMiddleware, headers: HTTPFields = [:]) async throws
    -> HTTPFields
{
    let outgoing = HTTPRequest(
        method: .get, scheme: "https", authority: "items.example", path: "/items", headerFields: headers
    )
    let (response, _) = try await middleware.intercept(
        outgoing,
        body: nil,
        baseURL: URL(string: "https://items.example")!,
        operationID: "listItems"
    ) { sent, _, _ in
        (HTTPResponse(status: .ok, headerFields: sent.headerFields), nil)
    }
    return response.headerFields
}

/// A Local whose id is nil outside a request.
struct OptionalID: Sendable {
    var id: String?
}

let optionalID = Local { OptionalID() }

@Suite("FieldHeadersMiddleware")
struct FieldHeadersMiddlewareTests {
    @Test("sends the request id as X-Request-ID and each field under its key, read in the calling task")
    func sendsTheFields() async throws {
        let sent = try await request.withValues({ $0.id = "call-1"; $0.tenant = "acme" }) {
            try await sentHeaders()
        }
        #expect(sent[.requestID] == "call-1")
        #expect(sent[.tenant] == "acme")
        #expect(sent[HTTPField.Name("X-User")!] == nil)  // nil: left out
        #expect(sent.count == 2)
    }

    @Test("outside any request, an optional id sends no header")
    func optionalIDOutsideARequest() async throws {
        let middleware = FieldHeadersMiddleware(requestID: LocalField("request-id", of: optionalID, at: \.id))
        #expect(try await sentHeaders(middleware)[.requestID] == nil)
        let server = RequestScopeMiddleware(id: \.id, of: optionalID)
        let (_, body) = try await serve(server, headers: [.requestID: "opt-1"]) { _, _, _ in
            let sent = try await sentHeaders(middleware)
            return (HTTPResponse(status: .ok), HTTPBody(sent[.requestID] ?? "none"))
        }
        #expect(try await text(of: body) == "opt-1")
    }

    @Test("leaves a header the request already has as it is")
    func leavesExplicitHeadersAlone() async throws {
        let sent = try await request.withValues({ $0.id = "call-2"; $0.tenant = "acme"; $0.user = "ann" }) {
            try await sentHeaders(headers: [.requestID: "explicit-id", .tenant: "explicit-tenant"])
        }
        #expect(sent[values: .requestID] == ["explicit-id"])
        #expect(sent[values: .tenant] == ["explicit-tenant"])
        #expect(sent[HTTPField.Name("X-User")!] == "ann")
    }

    @Test("the first of two fields with the same header name wins")
    func firstFieldWins() async throws {
        let middleware = FieldHeadersMiddleware(fields: [
            LocalField("X-Tenant", of: request, at: \.tenant),
            LocalField("x-tenant", of: request, at: \.id),
        ])
        let sent = try await request.withValues({ $0.id = "call-3"; $0.tenant = "first" }) {
            try await sentHeaders(middleware)
        }
        #expect(sent[values: .tenant] == ["first"])
    }

    @Test("a value with line breaks is sent with spaces in their place")
    func legalizesValues() async throws {
        let sent = try await request.withValue(\.user, "ann\r\nX-Admin: yes") {
            try await sentHeaders()
        }
        let user = try #require(sent[HTTPField.Name("X-User")!])
        #expect(!user.contains("\r") && !user.contains("\n"))
        #expect(sent[HTTPField.Name("X-Admin")!] == nil)
    }

    @Test("a call made while serving a request, from the handler or a child task, continues the request's id")
    func continuesTheServersID() async throws {
        let (_, body) = try await serve(makeMiddleware(), headers: [.requestID: "chain-1"]) { _, _, _ in
            request.tenant = "acme"
            let direct = try await sentHeaders()
            let fromChild = try await Task { try await sentHeaders() }.value
            let seen = [direct, fromChild].map { "\($0[.requestID] ?? "-") \($0[.tenant] ?? "-")" }
            return (HTTPResponse(status: .ok), HTTPBody(seen.joined(separator: "|")))
        }
        #expect(try await text(of: body) == "chain-1 acme|chain-1 acme")
    }

    #if compiler(>=6.2)
    @Test("a field key that is no header name stops the program when the middleware is made, naming the key")
    func invalidKeyStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = FieldHeadersMiddleware(fields: [LocalField("tenant id", of: request, at: \.tenant)])
        }
        let message = result.map { String(decoding: $0.standardErrorContent, as: UTF8.self) } ?? ""
        #expect(message.contains("\"tenant id\""))
        #expect(message.contains("X-Tenant"))
    }
    #endif
}
#endif
