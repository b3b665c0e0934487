import Foundation
import Locals
import Testing
import _LocalsHTTPSupport

/// A session discriminator with no session current: a request that carries no session cookie.
private struct NoSession: Discriminator {
    var currentKey: String? { nil }
}

private struct Session: Sendable {
    var id: String? = nil
    var items = 0
}

@Suite("RequestScopes: one request's scopes over the chosen Locals")
struct RequestScopesTests {
    @Test("the id is stored in the id's Local for the operation, and restored after")
    func storesTheID() async throws {
        struct Request: Sendable { var id = "-" }
        let request = Local { Request() }
        let scopes = RequestScopes(id: \.id, of: request, fields: [LocalField("request-id", of: request, at: \.id)])
        let seen = try await scopes.run(id: "abc") {
            (request.id, scopes.currentFieldValues.map(\.value))
        }
        #expect(seen.0 == "abc" && seen.1 == ["abc"])
        #expect(request.id == "-")
    }

    @Test("the id is stored as a type of the user's own that conforms to RequestIDStorable")
    func storesTheIDAsAnOwnType() async throws {
        struct TraceableID: RequestIDStorable, Equatable {
            let text: String
            init(requestID: String) { text = "req-" + requestID }
        }
        struct Request: Sendable { var id = TraceableID(requestID: "none") }
        let request = Local { Request() }
        let scopes = RequestScopes(id: \.id, of: request, fields: [])
        let seen = try await scopes.run(id: "abc") { request.id }
        #expect(seen == TraceableID(requestID: "abc") && seen.text == "req-abc")
        #expect(request.id.text == "req-none")
    }

    #if compiler(>=6.2)
    @Test("a session Local with no current session gets no scope, and the request is served")
    func sessionLocalWithoutASession() async {
        let result = await #expect(processExitsWith: .success, observing: [\.standardErrorContent]) {
            struct Request: Sendable { var id: String? = nil }
            let request = Local { Request() }
            let cart = Local(NoSession()) { Session() }
            let cartAsID = Local(NoSession()) { Session() }
            let scopes = RequestScopes(id: \.id, of: request, scoping: cart, fields: [])
            let served = try? await scopes.run(id: "abc") { request.id == "abc" && cart.items == 0 }
            let idScopes = RequestScopes(id: \.id, of: cartAsID, fields: [])
            let servedToo = try? await idScopes.run(id: "abc") { cartAsID.id == nil }
            exit(served == true && servedToo == true ? 0 : 1)
        }
        if let result, result.exitStatus != .exitCode(0) {
            Issue.record("the child wrote: \(String(decoding: result.standardErrorContent, as: UTF8.self))")
        }
    }
    #endif
}
