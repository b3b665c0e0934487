public import GRPCCore
public import Logging

/// `locals.example.Echo`: `Get` (unary) and `Expand` (server streaming), with JSON messages and
/// hand-written descriptors.
///
/// Neither method takes the call's id as a parameter: both read it from ``currentCall``, which
/// `RequestScopeInterceptor` sets for the whole call.
public struct EchoService: RegistrableRPCService {
    /// The service's fully qualified name.
    public static let name = "locals.example.Echo"
    /// `Get`: one request, one reply.
    public static let get = MethodDescriptor(fullyQualifiedService: name, method: "Get")
    /// `Expand`: one request, three replies.
    public static let expand = MethodDescriptor(fullyQualifiedService: name, method: "Expand")

    private let logger: Logger

    /// The service, logging to `logger` (whose metadata provider adds the call's fields).
    public init(logger: Logger) {
        self.logger = logger
    }

    /// Registers `Get` and `Expand`.
    public func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
        router.registerHandler(
            forMethod: Self.get,
            deserializer: JSONDeserializer<EchoRequest>(),
            serializer: JSONSerializer<EchoReply>()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            return StreamingServerResponse(single: ServerResponse(message: await get(single.message)))
        }
        router.registerHandler(
            forMethod: Self.expand,
            deserializer: JSONDeserializer<EchoRequest>(),
            serializer: JSONSerializer<EchoReply>()
        ) { request, _ in
            let single = try await ServerRequest(stream: request)
            return expand(single.message)
        }
    }

    /// Answers a text that holds the request's text. Logs from the handler and from a child task.
    func get(_ request: EchoRequest) async -> EchoReply {
        // A plain write: it lands in the call's scope, so the lines below carry `name`.
        currentCall.name = request.text
        logger.info("get")
        async let reply = compose(request.text)  // a child task: it inherits the call's values
        return await reply
    }

    private func compose(_ text: String) -> EchoReply {
        logger.info("composing reply")
        return EchoReply(text: "You said \(text).", requestID: currentCall.id ?? "-")
    }

    /// Returns at once; grpc-swift runs the producer afterwards, and each message reads the id
    /// from the Local when it is made.
    func expand(_ request: EchoRequest) -> StreamingServerResponse<EchoReply> {
        currentCall.name = request.text
        logger.info("expand")
        return StreamingServerResponse { [logger] writer in
            for part in 1...3 {
                let reply = EchoReply(text: "\(currentCall.name ?? "?") part \(part)", requestID: currentCall.id ?? "-")
                logger.info("part written", metadata: ["part": "\(part)"])
                try await writer.write(reply)
            }
            return [:]
        }
    }
}
