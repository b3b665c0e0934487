#if GRPC
import GRPCCore
import Locals
import LocalsGRPC
import LocalsTracing
import Testing

@Suite("LocalFieldsInterceptor")
struct LocalFieldsInterceptorTests {
    /// Reads the tenant into metadata for the client, and the server's `Get` names what it saw.
    let sending = LocalFieldsInterceptor(
        id: LocalField("request-id", of: call, at: \.id),
        sending: [LocalField("tenant", of: call, at: \.tenant), LocalField("user", of: call, at: \.user)]
    )

    @Test("the id goes as x-request-id and the other fields under their keys, read in the calling task")
    func sendsFields() async throws {
        let server = RequestScopeInterceptor(id: \.id, of: call)
        let reply = try await withEchoServer(serverInterceptors: [server], clientInterceptors: [sending]) { client in
            try await call.withValues({ $0.id = "from-client"; $0.tenant = "acme" }) {
                try await client.get("x-request-id,tenant,user").0
            }
        }
        #expect(reply.requestID == "from-client")
        // A nil field (user) is left out.
        #expect(reply.seen == ["x-request-id": "from-client", "tenant": "acme"])
    }

    @Test("metadata the caller set is not overwritten")
    func keepsCallerMetadata() async throws {
        let reply = try await withEchoServer(serverInterceptors: [], clientInterceptors: [sending]) { client in
            try await call.withValues({ $0.id = "from-local"; $0.tenant = "acme" }) {
                try await client.get("x-request-id,tenant", metadata: ["x-request-id": "set-by-caller"]).0
            }
        }
        #expect(reply.seen == ["x-request-id": "set-by-caller", "tenant": "acme"])
    }

    @Test("a value unfit for text metadata is left out and the call goes ahead")
    func dropsUnfitValue() async throws {
        let reply = try await withEchoServer(serverInterceptors: [], clientInterceptors: [sending]) { client in
            try await call.withValues({ $0.id = "ok"; $0.tenant = "line\nbreak" }) {
                try await client.get("x-request-id,tenant").0
            }
        }
        #expect(reply.seen == ["x-request-id": "ok"])
    }

    @Test("baggage travels from the client's Locals to the server's, through the baggage metadata")
    func carriesBaggage() async throws {
        let baggage = LocalsBaggage([BaggageField("tenant", of: call, at: \.tenant)])
        let server = RequestScopeInterceptor(id: \.id, of: call, baggage: baggage)
        let client = LocalFieldsInterceptor(baggage: baggage)
        let (messages, _) = try await withEchoServer(serverInterceptors: [server], clientInterceptors: [client]) {
            client in
            try await call.withValue(\.tenant, "acme") {
                try await client.get("baggage")
            }
        }
        #expect(messages.seen == ["baggage": "tenant=acme"])
    }
}
#endif
