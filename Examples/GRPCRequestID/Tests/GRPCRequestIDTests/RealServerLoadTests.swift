import GRPCCore
import GRPCNIOTransportHTTP2
import GRPCRequestID
import Synchronization
import Testing

import Foundation

/// Starts the real server on an ephemeral loopback port and drives it with a real gRPC client
/// over HTTP/2.
@Suite("grpc-request-id over real HTTP/2", .serialized)
struct RealServerLoadTests {
    static let calls = 1_000
    static let concurrency = 64
    /// What the server logs per call: `Get` the handler's line and its `async let` child's line;
    /// `Expand` the handler's line and one line per message from the producer.
    static let linesPerGet = 2
    static let linesPerExpand = 4

    /// What one call sent and got back.
    struct Exchange: Sendable {
        let method: String
        let name: String
        let sentID: String?
        var metadataID: String?
        var replies: [EchoReply] = []
        var error: String?

        /// What is wrong with the exchange, if anything: its id or its messages.
        var problem: String? {
            if let error { return "\(name): \(error)" }
            guard let metadataID else { return "\(name): no x-request-id in the initial metadata" }
            if let sentID, metadataID != sentID { return "\(name): sent \(sentID), got \(metadataID)" }
            if sentID == nil, UUID(uuidString: metadataID) == nil {
                return "\(name): generated \(metadataID) is no UUID"
            }
            let expected =
                method == "Expand"
                ? (1...3).map { EchoReply(text: "\(name) part \($0)", requestID: metadataID) }
                : [EchoReply(text: "You said \(name).", requestID: metadataID)]
            return replies == expected ? nil : "\(name): replies \(replies)"
        }
    }

    @Test(
        "1,000 calls, 64 in flight, half Get and half Expand, half with an id: each reply, message and log line carries its own id",
        .timeLimit(.minutes(3))
    )
    func loadOverLoopback() async throws {
        let capture = LogCapture()
        let (exchanges, peakInFlight, duration) = try await Self.withServer(logger: capture) { client in
            await Self.drive(client)
        }
        let problems = exchanges.compactMap(\.problem)
        let generated = exchanges.filter { $0.sentID == nil }.compactMap(\.metadataID)
        let idOfName = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.metadataID ?? "?") })
        let messages = exchanges.map(\.replies.count).reduce(0, +)

        // Log lines: every line written for a call carries exactly that call's id, checked
        // against the name the handler set (which every line of the call carries too).
        let entries = capture.entries
        var linesPerID: [String: Int] = [:]
        var logProblems: [String] = []
        for entry in entries {
            guard let id = entry.requestID else {
                if entry.metadata["name"] != nil { logProblems.append("no request-id: \(entry)") }
                continue
            }
            linesPerID[id, default: 0] += 1
            guard let name = entry.metadata["name"] else {
                logProblems.append("a line that names no call: \(entry)")
                continue
            }
            if idOfName[name] != id { logProblems.append("line of \(name) carries \(id): \(entry)") }
        }
        for exchange in exchanges {
            let expected = exchange.method == "Expand" ? Self.linesPerExpand : Self.linesPerGet
            let count = linesPerID[exchange.metadataID ?? "?"] ?? 0
            if count != expected { logProblems.append("\(exchange.name): \(count) lines, expected \(expected)") }
        }
        let linesChecked = linesPerID.values.reduce(0, +)

        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        print(
            """
            grpc-request-id load: \(exchanges.count) calls (\(exchanges.filter { $0.method == "Get" }.count) Get, \
            \(exchanges.filter { $0.method == "Expand" }.count) Expand), concurrency \(Self.concurrency) \
            (peak \(peakInFlight) in flight), \(problems.count) failures, \(String(format: "%.2f", seconds)) s \
            (\(Int(Double(exchanges.count) / seconds)) calls/s); \(generated.count) ids generated \
            (\(Set(generated).count) distinct); checked: \(exchanges.count) x-request-id metadata, \
            \(messages) messages, \(linesChecked) log lines with an id (of \(entries.count)); \
            \(logProblems.count) log problems
            """
        )

        #expect(exchanges.count == Self.calls)
        #expect(idOfName.count == Self.calls)
        #expect(peakInFlight >= Self.concurrency)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(messages == Self.calls / 2 * 3 + Self.calls / 2)
        #expect(generated.count == Self.calls / 2)
        #expect(Set(generated).count == generated.count)
        #expect(Set(exchanges.compactMap(\.metadataID)).count == Self.calls)
        #expect(logProblems.isEmpty, "\(logProblems.prefix(5))")
        #expect(linesChecked == Self.calls / 2 * (Self.linesPerGet + Self.linesPerExpand))
    }

    @Test("a malformed x-request-id is replaced by a new id, with a notice line that says why")
    func malformedID() async throws {
        let capture = LogCapture()
        let bad = ["two words", String(repeating: "x", count: 129), "tab\there"]
        let exchanges = try await Self.withServer(logger: capture) { client in
            var exchanges: [Exchange] = []
            for (index, id) in bad.enumerated() {
                exchanges.append(await Self.call(client, method: "Get", name: "bad\(index)", id: id))
            }
            return exchanges
        }
        for exchange in exchanges {
            #expect(exchange.error == nil)
            let id = try #require(exchange.metadataID)
            #expect(UUID(uuidString: id) != nil)
            #expect(exchange.replies.first?.requestID == id)
        }
        let notices = capture.entries.filter { $0.message.hasPrefix("x-request-id dropped") }
        #expect(notices.count == bad.count)
        #expect(Set(notices.compactMap(\.requestID)) == Set(exchanges.compactMap(\.metadataID)))
    }

    /// Runs the real server on 127.0.0.1 with a free port, and `body` with a client of it.
    static func withServer<R: Sendable>(
        logger capture: LogCapture,
        _ body: @Sendable (GRPCClient<HTTP2ClientTransport.Posix>) async throws -> R
    ) async throws -> R {
        let server = makeServer(port: 0, logger: capture.logger)
        return try await withThrowingTaskGroup(of: R?.self) { group in
            group.addTask {
                try await server.serve()
                return nil
            }
            let result: Result<R, any Error>
            do {
                let address = try await server.transport.listeningAddress
                let port = try #require(address.ipv4?.port)
                let transport = try HTTP2ClientTransport.Posix(
                    target: .ipv4(address: "127.0.0.1", port: port),
                    transportSecurity: .plaintext
                )
                result = .success(try await withGRPCClient(transport: transport) { client in try await body(client) })
            } catch {
                result = .failure(error)
            }
            // Stopped whatever happened, so that a failure fails the test instead of hanging it.
            server.beginGracefulShutdown()
            try await group.waitForAll()
            return try result.get()
        }
    }

    /// Calls `method` with `name` as its text and `id` as `x-request-id` (none when nil).
    static func call(
        _ client: GRPCClient<HTTP2ClientTransport.Posix>,
        method: String,
        name: String,
        id: String?
    ) async -> Exchange {
        var exchange = Exchange(method: method, name: name, sentID: id)
        var metadata: Metadata = [:]
        if let id { metadata.addString(id, forKey: "x-request-id") }
        let request = ClientRequest(message: EchoRequest(text: name), metadata: metadata)
        var options = CallOptions.defaults
        options.timeout = .seconds(10)
        do {
            let (replies, metadataID): ([EchoReply], String?)
            if method == "Expand" {
                (replies, metadataID) = try await client.serverStreaming(
                    request: request,
                    descriptor: EchoService.expand,
                    serializer: JSONSerializer<EchoRequest>(),
                    deserializer: JSONDeserializer<EchoReply>(),
                    options: options
                ) { response in
                    var replies: [EchoReply] = []
                    for try await reply in response.messages { replies.append(reply) }
                    return (replies, response.metadata[stringValues: "x-request-id"].first(where: { _ in true }))
                }
            } else {
                (replies, metadataID) = try await client.unary(
                    request: request,
                    descriptor: EchoService.get,
                    serializer: JSONSerializer<EchoRequest>(),
                    deserializer: JSONDeserializer<EchoReply>(),
                    options: options
                ) { response in
                    let id = response.metadata[stringValues: "x-request-id"].first(where: { _ in true })
                    return ([try response.message], id)
                }
            }
            exchange.replies = replies
            exchange.metadataID = metadataID
        } catch {
            exchange.error = "\(error)"
        }
        return exchange
    }

    /// Makes `calls` calls from `concurrency` workers, each making its share one after another:
    /// `Get` for even n and `Expand` for odd n, with `x-request-id: client-<n>` for calls 0 and 1
    /// of every 4 and none for the others, so that each method gets both.
    static func drive(
        _ client: GRPCClient<HTTP2ClientTransport.Posix>
    ) async -> (exchanges: [Exchange], peakInFlight: Int, duration: Duration) {
        let gauge = InFlightGauge()
        let start = ContinuousClock.now
        let exchanges = await withTaskGroup(of: [Exchange].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var done: [Exchange] = []
                    for index in stride(from: worker, to: calls, by: concurrency) {
                        gauge.enter()
                        done.append(
                            await call(
                                client,
                                method: index.isMultiple(of: 2) ? "Get" : "Expand",
                                name: "user\(index)",
                                id: index % 4 < 2 ? "client-\(index)" : nil
                            )
                        )
                        gauge.leave()
                    }
                    return done
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        return (exchanges, gauge.peak, ContinuousClock.now - start)
    }

    /// Counts the calls made and not yet answered, and the most there were at once.
    final class InFlightGauge: Sendable {
        private let current = Atomic(0)
        private let highest = Atomic(0)

        func enter() {
            let now = current.add(1, ordering: .relaxed).newValue
            highest.max(now, ordering: .relaxed)
        }

        func leave() {
            current.subtract(1, ordering: .relaxed)
        }

        var peak: Int { highest.load(ordering: .relaxed) }
    }
}
