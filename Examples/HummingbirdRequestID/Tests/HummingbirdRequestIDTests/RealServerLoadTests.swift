import AsyncHTTPClient
import HTTPTypes
import Hummingbird
import HummingbirdRequestID
import HummingbirdTesting
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Starts the real server on an ephemeral loopback port and drives it over real HTTP.
// Serialized: each load run has the machine to itself, so the figures it prints are its own.
@Suite("request-id-server over real HTTP", .serialized)
struct RealServerLoadTests {
    static let requests = 1_000
    static let concurrency = 64
    /// What the server logs for each request: Hummingbird's request line, and for `/hello` the
    /// handler's line and the lines of its `async let` child and of its two task-group children,
    /// for `/stream` the handler's line and one line per part from the body's writer.
    static let requestMessages: Set = [
        "Request", "greeting requested", "composing greeting", "calling service", "streaming", "part written",
    ]
    static let linesPerRequest = 5

    /// What one request sent and got back.
    struct Exchange: Sendable {
        let route: String
        let name: String
        let sentID: String?
        var status: Int = 0
        var headerID: String?
        var body = ""
        var error: String?

        /// What is wrong with the exchange, if anything: the response, its id or its body.
        var problem: String? {
            if let idProblem { return idProblem }
            let id = headerID ?? "?"
            let expected =
                route == "stream"
                ? (1...3).map { "part \($0) for \(name) request \(id)\n" }.joined()
                : "Hello, \(name). Your request id is \(id)."
            guard body == expected else {
                return "\(name): body \(body)"
            }
            return nil
        }

        /// What is wrong with the response or the id it echoes, if anything; the body aside.
        var idProblem: String? {
            if let error { return "\(name): \(error)" }
            guard status == 200 else { return "\(name): status \(status)" }
            guard let headerID else { return "\(name): no X-Request-ID on the response" }
            if let sentID, headerID != sentID { return "\(name): sent \(sentID), got \(headerID)" }
            if sentID == nil, UUID(uuidString: headerID) == nil { return "\(name): generated \(headerID) is no UUID" }
            return nil
        }
    }

    @Test(
        "1,000 requests, 64 in flight, half /hello and half /stream, half with an id: each response, streamed line and log line carries its own id",
        .timeLimit(.minutes(2))
    )
    func loadOverLoopback() async throws {
        let capture = LogCapture()
        let (exchanges, peakInFlight, duration) = try await Self.withRealServer(capture: capture) { port in
            try await Self.drive(port: port) { $0.isMultiple(of: 2) ? "hello" : "stream" }
        }

        // Responses: every one echoes its own id, in the header and in the body (each of the three
        // lines of a streamed body), and generated ids are unique.
        let problems = exchanges.compactMap(\.problem)
        let generated = exchanges.filter { $0.sentID == nil }.compactMap(\.headerID)
        let idOfName = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.headerID ?? "?") })
        let names = Set(idOfName.keys)
        let streamedLines = exchanges.filter { $0.route == "stream" }.map { $0.body.split(separator: "\n").count }
            .reduce(0, +)

        // Log lines: every line written for a request carries exactly that request's id.
        let entries = capture.entries
        var linesPerID: [String: Int] = [:]
        var logProblems: [String] = []
        for entry in entries {
            // Which request wrote the line, as far as the line says so itself: the path of
            // Hummingbird's request line, the name the handler logs, the user it set.
            let path = entry.metadata["hb.request.path"].map { String($0.split(separator: "/").last ?? "") }
            let claimed = [path, entry.metadata["name"], entry.metadata["user"]].compactMap { $0 }
            guard let id = entry.requestID else {
                // Only the server's own lines (started, shutting down) may go without an id.
                if !claimed.isEmpty || Self.requestMessages.contains(entry.message) {
                    logProblems.append("no request-id: \(entry)")
                }
                continue
            }
            linesPerID[id, default: 0] += 1
            for name in claimed where idOfName[name] != id {
                logProblems.append("line of \(name) carries \(id): \(entry)")
            }
            if claimed.isEmpty {
                logProblems.append("a line that names no request: \(entry)")
            }
        }
        for exchange in exchanges where linesPerID[exchange.headerID ?? "?"] != Self.linesPerRequest {
            let count = linesPerID[exchange.headerID ?? "?"] ?? 0
            logProblems.append("\(exchange.name): \(count) lines, expected \(Self.linesPerRequest)")
        }

        let failures = problems.count
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        print(
            """
            request-id-server load: \(exchanges.count) requests (\(exchanges.count - streamedLines / 3) /hello, \
            \(streamedLines / 3) /stream), concurrency \(Self.concurrency) (peak \(peakInFlight) in flight), \
            \(failures) failures, \(String(format: "%.2f", seconds)) s \
            (\(Int(Double(exchanges.count) / seconds)) req/s); \(generated.count) ids generated \
            (\(Set(generated).count) distinct); checked: \(exchanges.count) X-Request-ID headers, \
            \(streamedLines) streamed lines, \(entries.count) log lines \
            (\(linesPerID.values.reduce(0, +)) with a request id); \(logProblems.count) log problems
            """
        )

        #expect(exchanges.count == Self.requests)
        #expect(names.count == Self.requests)
        #expect(peakInFlight >= Self.concurrency)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(streamedLines == Self.requests / 2 * 3)
        #expect(generated.count == Self.requests / 2)
        #expect(Set(generated).count == generated.count)
        #expect(Set(exchanges.compactMap(\.headerID)).count == Self.requests)
        #expect(logProblems.isEmpty, "\(logProblems.prefix(5))")
        #expect(linesPerID.values.reduce(0, +) == Self.requests * Self.linesPerRequest)
    }

    @Test("requests that follow one another on a keep-alive connection each see only their own id")
    func keepAliveConnection() async throws {
        // Hummingbird serves the requests of one connection one after another in one task: the
        // scope each request opens is closed before the next begins.
        let capture = LogCapture()
        let app = buildApplication(makeLogHandler: capture.makeLogHandler)
        let sent: [String?] = ["first-1", nil, "third-3", nil, nil]
        let ids = try await app.test(.live) { client in
            var ids: [String] = []
            for (index, id) in sent.enumerated() {
                let headers: HTTPFields = id.map { [.xRequestID: $0] } ?? [:]
                let response = try await client.execute(uri: "/hello/k\(index)", method: .get, headers: headers)
                let echoed = try #require(response.headers[.xRequestID])
                #expect(echoed == id ?? echoed)
                #expect(String(buffer: response.body) == "Hello, k\(index). Your request id is \(echoed).")
                ids.append(echoed)
            }
            return ids
        }
        #expect(Set(ids).count == sent.count)
        let entries = capture.entries
        for (index, id) in ids.enumerated() {
            let lines = entries.filter { $0.requestID == id }
            #expect(lines.count == 5)
            #expect(lines.filter { $0.metadata["user"] != nil }.allSatisfy { $0.metadata["user"] == "k\(index)" })
        }
    }

    /// Runs the real server on 127.0.0.1 with port 0, then `body` with the port it bound, then shuts
    /// the server down.
    static func withRealServer<Result>(
        store: ProfileStore = .shared,
        capture: LogCapture,
        _ body: (Int) async throws -> Result
    ) async throws -> Result {
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let app = buildApplication(
            configuration: ApplicationConfiguration(
                address: .hostname("127.0.0.1", port: 0),
                serverName: "request-id-server"
            ),
            store: store,
            makeLogHandler: capture.makeLogHandler,
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            }
        )
        let serviceGroup = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [app],
                gracefulShutdownSignals: [],
                logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }
            )
        )
        return try await withThrowingTaskGroup { group in
            group.addTask {
                defer { portSink.finish() }  // never leave the test waiting for a port
                try await serviceGroup.run()
            }
            var portIterator = ports.makeAsyncIterator()
            guard let port = await portIterator.next(), port > 0 else {
                await serviceGroup.triggerGracefulShutdown()
                throw ServerDidNotStart()
            }
            do {
                let result = try await body(port)
                await serviceGroup.triggerGracefulShutdown()
                try await group.waitForAll()
                return result
            } catch {
                await serviceGroup.triggerGracefulShutdown()
                throw error
            }
        }
    }

    /// Sends `GET /<route>/user<n>` for every n below `requests`: the same route for all.
    static func drive(
        port: Int,
        route: String
    ) async throws -> (exchanges: [Exchange], peakInFlight: Int, duration: Duration) {
        try await drive(port: port) { _ in route }
    }

    /// Sends `GET /<route(n)>/user<n>` for every n below `requests` from `concurrency` workers,
    /// each sending its share one after another. Requests 0 and 1 of every 4 carry
    /// `X-Request-ID: client-<n>`, the others none, so that every route gets both.
    static func drive(
        port: Int,
        route: @escaping @Sendable (Int) -> String
    ) async throws -> (exchanges: [Exchange], peakInFlight: Int, duration: Duration) {
        var configuration = HTTPClient.Configuration()
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(30),
            concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency
        )
        configuration.timeout = HTTPClient.Configuration.Timeout(connect: .seconds(10), read: .seconds(10))
        let client = HTTPClient(configuration: configuration)
        let gauge = InFlightGauge()
        let start = ContinuousClock.now

        let exchanges = await withTaskGroup(of: [Exchange].self) { group in
            for worker in 0..<concurrency {
                group.addTask {
                    var done: [Exchange] = []
                    for index in stride(from: worker, to: requests, by: concurrency) {
                        let name = "user\(index)"
                        var exchange = Exchange(
                            route: route(index),
                            name: name,
                            sentID: index % 4 < 2 ? "client-\(index)" : nil
                        )
                        gauge.enter()
                        do {
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/\(exchange.route)/\(name)")
                            if let id = exchange.sentID {
                                request.headers.add(name: "X-Request-ID", value: id)
                            }
                            let response = try await client.execute(request, timeout: .seconds(10))
                            exchange.status = Int(response.status.code)
                            exchange.headerID = response.headers.first(name: "X-Request-ID")
                            exchange.body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                        } catch {
                            exchange.error = "\(error)"
                        }
                        gauge.leave()
                        done.append(exchange)
                    }
                    return done
                }
            }
            return await group.reduce(into: []) { $0 += $1 }
        }
        let duration = ContinuousClock.now - start
        try await client.shutdown()
        return (exchanges, gauge.peak, duration)
    }

    struct ServerDidNotStart: Error {}

    /// Counts the requests sent and not yet answered, and the most there were at once.
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
