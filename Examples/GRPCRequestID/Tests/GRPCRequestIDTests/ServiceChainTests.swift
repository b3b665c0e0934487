import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCRequestID
import Locals
import LocalsGRPC
import Logging
import Testing

import Foundation

/// Two real servers on 127.0.0.1: a front service whose handler calls the echo service through a
/// client with `LocalFieldsInterceptor`, so that the echo service serves the call under the front
/// call's id with no parameter passing.
@Suite("two services, one id", .serialized)
struct ServiceChainTests {
    static let calls = 200
    static let concurrency = 16
    /// Per call: the front handler's line, and the echo service's two `Get` lines.
    static let linesPerCall = 3

    /// One call's name, the id it got back (nil on failure) and the front service's reply.
    typealias Outcome = (name: String, id: String?, reply: EchoReply?)

    /// `locals.example.Front/Get`: logs, calls `Echo/Get` on `back`, and answers the echo's text
    /// with the id the echo service saw.
    struct FrontService: RegistrableRPCService {
        static let get = MethodDescriptor(fullyQualifiedService: "locals.example.Front", method: "Get")
        let back: GRPCClient<HTTP2ClientTransport.Posix>
        let logger: Logger

        func registerMethods<Transport: ServerTransport>(with router: inout RPCRouter<Transport>) {
            router.registerHandler(
                forMethod: Self.get,
                deserializer: JSONDeserializer<EchoRequest>(),
                serializer: JSONSerializer<EchoReply>()
            ) { request, _ in
                let single = try await ServerRequest(stream: request)
                currentCall.name = single.message.text
                logger.info("relaying")
                let echo = try await back.unary(
                    request: ClientRequest(message: single.message),
                    descriptor: EchoService.get,
                    serializer: JSONSerializer<EchoRequest>(),
                    deserializer: JSONDeserializer<EchoReply>(),
                    options: .defaults
                ) { try $0.message }
                let reply = EchoReply(text: "\(echo.text) back=\(echo.requestID)", requestID: currentCall.id ?? "-")
                return StreamingServerResponse(single: ServerResponse(message: reply))
            }
        }
    }

    @Test(
        "200 calls through two services, 16 in flight: the echo service serves each under the front call's id",
        .timeLimit(.minutes(2))
    )
    func idCrossesServices() async throws {
        let capture = LogCapture()
        let logger = capture.logger
        let back = makeServer(port: 0, logger: logger)
        let results: [Outcome] = try await withThrowingTaskGroup(of: Void.self) { group in
            group.addTask { try await back.serve() }
            let backAddress = try await back.transport.listeningAddress
            let backPort = try #require(backAddress.ipv4?.port)
            let backClient = GRPCClient(
                transport: try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: "127.0.0.1", port: backPort),
                    transportSecurity: .plaintext
                ),
                interceptors: [LocalFieldsInterceptor(id: callFields[0])]
            )
            group.addTask { try await backClient.runConnections() }
            let front = GRPCServer(
                transport: HTTP2ServerTransport.Posix(
                    address: .ipv4(host: "127.0.0.1", port: 0),
                    transportSecurity: .plaintext
                ),
                services: [FrontService(back: backClient, logger: logger)],
                interceptors: [RequestScopeInterceptor(id: \.id, of: currentCall, logging: callFields, logger: logger)]
            )
            group.addTask { try await front.serve() }
            defer {
                // Stopped whatever happened, so that a failure fails the test instead of hanging it.
                front.beginGracefulShutdown()
                backClient.beginGracefulShutdown()
                back.beginGracefulShutdown()
            }
            let frontAddress = try await front.transport.listeningAddress
            let frontPort = try #require(frontAddress.ipv4?.port)
            let transport = try HTTP2ClientTransport.Posix(
                target: .ipv4(address: "127.0.0.1", port: frontPort),
                transportSecurity: .plaintext
            )
            return try await withGRPCClient(transport: transport) { client in
                await withTaskGroup(of: [Outcome].self) { workers in
                    for worker in 0..<Self.concurrency {
                        workers.addTask {
                            var done: [Outcome] = []
                            for index in stride(from: worker, to: Self.calls, by: Self.concurrency) {
                                let id = index.isMultiple(of: 2) ? "front-\(index)" : nil
                                done.append(await Self.call(client, name: "user\(index)", id: id))
                            }
                            return done
                        }
                    }
                    return await workers.reduce(into: []) { $0 += $1 }
                }
            }
        }

        var problems: [String] = []
        var idOfName: [String: String] = [:]
        for (name, id, reply) in results {
            guard let id, let reply else {
                problems.append("\(name): no id or no reply")
                continue
            }
            idOfName[name] = id
            if reply != EchoReply(text: "You said \(name). back=\(id)", requestID: id) {
                problems.append("\(name) (\(id)): \(reply)")
            }
        }
        var linesPerID: [String: Int] = [:]
        for entry in capture.entries {
            guard let id = entry.requestID, let name = entry.metadata["name"] else { continue }
            linesPerID[id, default: 0] += 1
            if idOfName[name] != id { problems.append("line of \(name) carries \(id): \(entry)") }
        }
        let linesChecked = linesPerID.values.reduce(0, +)
        print(
            "grpc-request-id chain: \(results.count) calls through 2 services, concurrency \(Self.concurrency), "
                + "\(problems.count) problems; checked \(results.count) replies and \(linesChecked) log lines"
        )
        #expect(results.count == Self.calls)
        #expect(idOfName.count == Self.calls)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(linesChecked == Self.calls * Self.linesPerCall)
        #expect(linesPerID.values.allSatisfy { $0 == Self.linesPerCall })
    }

    static func call(
        _ client: GRPCClient<HTTP2ClientTransport.Posix>,
        name: String,
        id: String?
    ) async -> Outcome {
        var metadata: Metadata = [:]
        if let id { metadata.addString(id, forKey: "x-request-id") }
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        do {
            return try await client.unary(
                request: ClientRequest(message: EchoRequest(text: name), metadata: metadata),
                descriptor: FrontService.get,
                serializer: JSONSerializer<EchoRequest>(),
                deserializer: JSONDeserializer<EchoReply>(),
                options: options
            ) { response in
                let id = response.metadata[stringValues: "x-request-id"].first(where: { _ in true })
                return (name, id, try response.message)
            }
        } catch {
            return (name, id, nil)
        }
    }
}
