#if GRPC
import Foundation
import GRPCCore
import GRPCInProcessTransport
import Locals
import LocalsTestSupport
import LocalsGRPC
import LocalsLogging
import Logging
import Synchronization

/// What the tests' server knows about the call a task is handling.
struct CallState: Sendable {
    var id = "-"
    var user: String?
    var tenant: String?
}

/// The request-id Local of the tests.
let call = Local { CallState() }

let fields = [LocalField("request-id", of: call, at: \.id), LocalField("user", of: call, at: \.user)]

/// A message of the tests' service, in and out, coded as JSON.
struct Echo: Codable, Sendable, Equatable {
    var text: String
    var requestID: String?
    var user: String?
    var seen: [String: String]?
}

struct JSONSerializer<Message: Encodable>: MessageSerializer {
    func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        Bytes(try JSONEncoder().encode(message))
    }
}

struct JSONDeserializer<Message: Decodable>: MessageDeserializer {
    func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        try serializedMessageBytes.withUnsafeBytes { try JSONDecoder().decode(Message.self, from: Data($0)) }
    }
}

enum Methods {
    static let get = MethodDescriptor(fullyQualifiedService: "locals.test.Echo", method: "Get")
    static let expand = MethodDescriptor(fullyQualifiedService: "locals.test.Echo", method: "Expand")
}

extension LogCapture {
    /// A capture whose loggers put this module's `fields` on every line.
    convenience init() {
        self.init(fields: fields)
    }
}

/// The tests' service. `Get` answers the id and user it reads, and the metadata named in its text
/// (comma-separated keys) as the server received it; `Expand` writes `user = text`, checks that a
/// child task sees it, and returns a producer that writes three messages after it returned, each
/// reading the Local when it is written.
struct EchoService: RegistrableRPCService {
    func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Methods.get,
            deserializer: JSONDeserializer<Echo>(),
            serializer: JSONSerializer<Echo>()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            var seen: [String: String] = [:]
            for key in single.message.text.split(separator: ",").map(String.init) {
                seen[key] = single.metadata[stringValues: key].first(where: { _ in true })
            }
            let reply = Echo(text: single.message.text, requestID: call.id, user: call.user, seen: seen)
            return StreamingServerResponse(single: ServerResponse(message: reply, metadata: ["handler": "get"]))
        }
        router.registerHandler(
            forMethod: Methods.expand,
            deserializer: JSONDeserializer<Echo>(),
            serializer: JSONSerializer<Echo>()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            // A call starts from the initial value: nothing of an earlier call leaks in.
            let before = call.user
            call.user = single.message.text
            async let child = call.user
            let childSaw = await child ?? "nil"
            return StreamingServerResponse(metadata: ["handler": "expand"]) { writer in
                for part in 1...3 {
                    await Task.yield()
                    let text = "\(call.user ?? "nil") part \(part) child=\(childSaw) before=\(before ?? "nil")"
                    try await writer.write(Echo(text: text, requestID: call.id, user: call.user))
                }
                return [:]
            }
        }
    }
}

/// Runs an in-process server with `serverInterceptors` and `body` with a client of it.
func withEchoServer<Result: Sendable>(
    serverInterceptors: [any ServerInterceptor],
    clientInterceptors: [any ClientInterceptor] = [],
    _ body: (GRPCClient<InProcessTransport.Client>) async throws -> Result
) async throws -> Result {
    let transport = InProcessTransport()
    return try await withGRPCServer(
        transport: transport.server,
        services: [EchoService()],
        interceptors: serverInterceptors
    ) { _ in
        try await withGRPCClient(transport: transport.client, interceptors: clientInterceptors) { client in
            try await body(client)
        }
    }
}

extension GRPCClient {
    /// `Get` with `text` and `metadata`: the reply and the response's initial metadata.
    func get(_ text: String, metadata: Metadata = [:]) async throws -> (Echo, Metadata) {
        try await unary(
            request: ClientRequest(message: Echo(text: text), metadata: metadata),
            descriptor: Methods.get,
            serializer: JSONSerializer<Echo>(),
            deserializer: JSONDeserializer<Echo>(),
            options: .defaults
        ) { response in
            (try response.message, response.metadata)
        }
    }

    /// `Expand` with `text` and `metadata`: the messages and the response's initial metadata.
    func expand(_ text: String, metadata: Metadata = [:]) async throws -> ([Echo], Metadata) {
        try await serverStreaming(
            request: ClientRequest(message: Echo(text: text), metadata: metadata),
            descriptor: Methods.expand,
            serializer: JSONSerializer<Echo>(),
            deserializer: JSONDeserializer<Echo>(),
            options: .defaults
        ) { response in
            var messages: [Echo] = []
            for try await message in response.messages {
                messages.append(message)
            }
            return (messages, response.metadata)
        }
    }
}
#endif
