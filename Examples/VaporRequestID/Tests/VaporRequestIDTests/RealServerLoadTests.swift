import AsyncHTTPClient
import Synchronization
import Testing
import Vapor
import VaporRequestID

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Starts the real server on an ephemeral loopback port and drives it over real HTTP.
@Suite("vapor-request-id over real HTTP", .serialized)
struct RealServerLoadTests {
    static let requests = 1_000
    static let concurrency = 64
    /// What the server logs for each request: Vapor's route line, and for `/hello` the handler's
    /// line and the lines of its `async let` child and of its two task-group children, for
    /// `/stream` the handler's line and one line per part from the body's callback.
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
            if let error { return "\(name): \(error)" }
            guard status == 200 else { return "\(name): status \(status)" }
            guard let headerID else { return "\(name): no X-Request-ID on the response" }
            if let sentID, headerID != sentID { return "\(name): sent \(sentID), got \(headerID)" }
            if sentID == nil, UUID(uuidString: headerID) == nil { return "\(name): generated \(headerID) is no UUID" }
            let expected =
                route == "stream"
                ? (1...3).map { "part \($0) for \(name) request \(headerID)\n" }.joined()
                : "Hello, \(name). Your request id is \(headerID)."
            return body == expected ? nil : "\(name): body \(body)"
        }
    }

    @Test(
        "1,000 requests, 64 in flight, half /hello and half /stream, half with an id: each response, streamed line and log line carries its own id",
        .timeLimit(.minutes(2))
    )
    func loadOverLoopback() async throws {
        let capture = LogCapture()
        let app = try await Application.make(.testing)
        app.configureRequestID(makeLogHandler: capture.makeLogHandler)
        app.http.server.configuration.hostname = "127.0.0.1"
        app.http.server.configuration.port = 0
        let outcome: Result<(exchanges: [Exchange], peakInFlight: Int, duration: Duration), any Error>
        do {
            try await app.server.start(address: nil)  // the configuration's: 127.0.0.1, port 0
            let port = try #require(app.http.server.shared.localAddress?.port)
            outcome = .success(try await Self.drive(port: port))
        } catch {
            outcome = .failure(error)
        }
        await app.server.shutdown()
        try await app.asyncShutdown()
        let (exchanges, peakInFlight, duration) = try outcome.get()

        let problems = exchanges.compactMap(\.problem)
        let generated = exchanges.filter { $0.sentID == nil }.compactMap(\.headerID)
        let idOfName = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.headerID ?? "?") })
        let streamedLines = exchanges.filter { $0.route == "stream" }.map { $0.body.split(separator: "\n").count }
            .reduce(0, +)

        // Log lines: every line written for a request carries exactly that request's id.
        let entries = capture.entries
        var linesPerID: [String: Int] = [:]
        var logProblems: [String] = []
        for entry in entries {
            // Which request wrote the line, as far as the line says so itself: the path in Vapor's
            // route line ("GET /hello/user7"), the name the handler logs, the user it set.
            let path = entry.message.hasPrefix("GET /") ? entry.message.split(separator: "/").last.map(String.init) : nil
            let claimed = [path, entry.metadata["name"], entry.metadata["user"]].compactMap { $0 }
            guard let id = entry.requestID else {
                if !claimed.isEmpty { logProblems.append("no request-id: \(entry)") }
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

        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        print(
            """
            vapor-request-id load: \(exchanges.count) requests (\(exchanges.count - streamedLines / 3) /hello, \
            \(streamedLines / 3) /stream), concurrency \(Self.concurrency) (peak \(peakInFlight) in flight), \
            \(problems.count) failures, \(String(format: "%.2f", seconds)) s \
            (\(Int(Double(exchanges.count) / seconds)) req/s); \(generated.count) ids generated \
            (\(Set(generated).count) distinct); checked: \(exchanges.count) X-Request-ID headers, \
            \(streamedLines) streamed lines, \(entries.count) log lines \
            (\(linesPerID.values.reduce(0, +)) with a request id); \(logProblems.count) log problems
            """
        )

        #expect(exchanges.count == Self.requests)
        #expect(idOfName.count == Self.requests)
        #expect(peakInFlight >= Self.concurrency)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(streamedLines == Self.requests / 2 * 3)
        #expect(generated.count == Self.requests / 2)
        #expect(Set(generated).count == generated.count)
        #expect(Set(exchanges.compactMap(\.headerID)).count == Self.requests)
        #expect(logProblems.isEmpty, "\(logProblems.prefix(5))")
        #expect(linesPerID.values.reduce(0, +) == Self.requests * Self.linesPerRequest)
    }

    /// Sends `GET /hello/user<n>` for even n and `GET /stream/user<n>` for odd n below `requests`,
    /// from `concurrency` workers, each sending its share one after another. Requests 0 and 1 of
    /// every 4 carry `X-Request-ID: client-<n>`, the others none, so that each route gets both.
    static func drive(port: Int) async throws -> (exchanges: [Exchange], peakInFlight: Int, duration: Duration) {
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
                        var exchange = Exchange(
                            route: index.isMultiple(of: 2) ? "hello" : "stream",
                            name: "user\(index)",
                            sentID: index % 4 < 2 ? "client-\(index)" : nil
                        )
                        gauge.enter()
                        do {
                            var request = HTTPClientRequest(
                                url: "http://127.0.0.1:\(port)/\(exchange.route)/\(exchange.name)")
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
