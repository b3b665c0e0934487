#if GRPC
import GRPCCore
import Locals
import LocalsTestSupport
import LocalsGRPC
import Logging
import Testing

@Suite("RequestScopeInterceptor")
struct RequestScopeInterceptorTests {
    @Test("a valid x-request-id is the call's id, read by the handler and echoed in the initial metadata")
    func echoesID() async throws {
        let interceptor = RequestScopeInterceptor(id: \.id, of: call)
        let (reply, metadata) = try await withEchoServer(serverInterceptors: [interceptor]) { client in
            try await client.get("hello", metadata: ["x-request-id": "abc-123"])
        }
        #expect(reply.requestID == "abc-123")
        #expect(Array(metadata[stringValues: "x-request-id"]) == ["abc-123"])
        // A single response's own metadata is kept.
        #expect(Array(metadata[stringValues: "handler"]) == ["get"])
    }

    @Test("a call without an id gets a new UUID, the same in the handler and the metadata")
    func generatesID() async throws {
        let interceptor = RequestScopeInterceptor(id: \.id, of: call)
        let (reply, metadata) = try await withEchoServer(serverInterceptors: [interceptor]) { client in
            try await client.get("hello")
        }
        let id = try #require(reply.requestID)
        #expect(id.utf8.count == 36)
        #expect(Array(metadata[stringValues: "x-request-id"]) == [id])
    }

    @Test(
        "a malformed id is replaced by a new one, with a log line that says why",
        arguments: ["has space", String(repeating: "x", count: 129), "tab\tinside", "caf\u{E9}"]
    )
    func replacesMalformedID(_ bad: String) async throws {
        let log = LogCapture()
        let interceptor = RequestScopeInterceptor(id: \.id, of: call, logging: fields, logger: log.logger())
        let (reply, metadata) = try await withEchoServer(serverInterceptors: [interceptor]) { client in
            try await client.get("hello", metadata: ["x-request-id": .string(bad)])
        }
        let id = try #require(reply.requestID)
        #expect(id != bad && id.utf8.count == 36)
        #expect(Array(metadata[stringValues: "x-request-id"]) == [id])
        let lines = log.all
        #expect(lines.count == 1)
        #expect(lines.first?.contains("x-request-id dropped") == true)
        #expect(lines.first?.contains("request-id=\(id)") == true)
    }

    @Test("a handler's plain write reaches its child task and every message its producer writes after it returned")
    func producerRunsInTheCallsScope() async throws {
        let interceptor = RequestScopeInterceptor(id: \.id, of: call)
        let (messages, metadata) = try await withEchoServer(serverInterceptors: [interceptor]) { client in
            try await client.expand("ada", metadata: ["x-request-id": "stream-1"])
        }
        #expect(messages.map(\.text) == (1...3).map { "ada part \($0) child=ada before=nil" })
        #expect(messages.map(\.requestID) == ["stream-1", "stream-1", "stream-1"])
        #expect(Array(metadata[stringValues: "x-request-id"]) == ["stream-1"])
        #expect(Array(metadata[stringValues: "handler"]) == ["expand"])
    }

    @Test("concurrent calls see only their own values, and none leaks into the next call")
    func noLeakBetweenCalls() async throws {
        let interceptor = RequestScopeInterceptor(id: \.id, of: call)
        let checked = try await withEchoServer(serverInterceptors: [interceptor]) { client in
            try await withThrowingTaskGroup(of: Int.self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let id = "call-\(index)"
                        let metadata: Metadata = ["x-request-id": .string(id)]
                        let (messages, _) = try await client.expand("name\(index)", metadata: metadata)
                        let expected = (1...3).map { "name\(index) part \($0) child=name\(index) before=nil" }
                        #expect(messages.map(\.text) == expected)
                        #expect(messages.allSatisfy { $0.requestID == id })
                        let (reply, _) = try await client.get("x", metadata: ["x-request-id": .string(id + "-get")])
                        #expect(reply.requestID == id + "-get")
                        #expect(reply.user == nil)
                        return messages.count + 1
                    }
                }
                return try await group.reduce(0, +)
            }
        }
        #expect(checked == 800)
        // Outside every call the Local holds its initial value.
        #expect(call.id == "-")
        #expect(call.user == nil)
    }

    /// An error that grpc-swift turns into a status.
    struct Denied: Error, RPCErrorConvertible {
        var rpcErrorCode: RPCError.Code { .permissionDenied }
        var rpcErrorMessage: String { "no" }
    }

    @Test(
        "an RPCError or RPCErrorConvertible thrown after the interceptor carries the id in the status metadata",
        arguments: [true, false]
    )
    func errorCarriesID(_ convertible: Bool) async throws {
        struct Failing: ServerInterceptor {
            let convertible: Bool
            func intercept<Input: Sendable, Output: Sendable>(
                request: StreamingServerRequest<Input>,
                context: ServerContext,
                next:
                    @Sendable (StreamingServerRequest<Input>, ServerContext) async throws
                    -> StreamingServerResponse<Output>
            ) async throws -> StreamingServerResponse<Output> {
                if convertible { throw Denied() }
                throw RPCError(code: .permissionDenied, message: "no")
            }
        }
        let interceptors: [any ServerInterceptor] = [
            RequestScopeInterceptor(id: \.id, of: call), Failing(convertible: convertible),
        ]
        let error = try await withEchoServer(serverInterceptors: interceptors) { client in
            await #expect(throws: RPCError.self) { try await client.get("x", metadata: ["x-request-id": "failing"]) }
        }
        #expect(error?.code == .permissionDenied)
        #expect(error.map { Array($0.metadata[stringValues: "x-request-id"]) } == ["failing"])
    }
}
#endif
