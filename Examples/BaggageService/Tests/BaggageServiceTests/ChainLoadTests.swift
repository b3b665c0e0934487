import AsyncHTTPClient
import BaggageService
import NIOCore
import Synchronization
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Chains of baggage services on loopback, driven over real HTTP.
@Suite("baggage-service chains over real HTTP")
struct ChainLoadTests {
    static let requests = 1_000
    static let concurrency = 64

    /// What one request sends, and what every service must read for it.
    struct Plan: Sendable {
        let name: String
        let header: String?
        let tenant: String?
        /// Nil when the first service must generate one.
        let requestID: String?

        /// Mixed tenants and ids; one request in eight without baggage, three in eight with a
        /// malformed or unacceptable member beside well-formed ones.
        init(_ index: Int) {
            let tenant = "t\(index % 5)"
            let id = "r-\(index)"
            name = "user\(index)"
            switch index % 8 {
            case 0, 1, 2:
                (header, self.tenant, requestID) = ("tenant=\(tenant),request-id=\(id)", tenant, id)
            case 3:
                // Whitespace, a property, and a member for someone else.
                let header = " request-id = \(id);ttl=1 , vendor=v\(index) ,tenant=\(tenant)"
                (self.header, self.tenant, requestID) = (header, tenant, id)
            case 4:
                (header, self.tenant, requestID) = (nil, nil, nil)
            case 5:
                // A bad escape: that member is dropped, so an id is generated.
                (header, self.tenant, requestID) = ("tenant=\(tenant),request-id=bad%zz", tenant, nil)
            case 6:
                // A space in a value and an empty member: the tenant is dropped.
                (header, self.tenant, requestID) = ("tenant=ac me,,request-id=\(id)", nil, id)
            default:
                // A newline, and a value trying to forge another key=value pair: both refused.
                (header, self.tenant, requestID) = ("tenant=t%0Ax,request-id=\(id)%20tenant=forged", nil, nil)
            }
        }
    }

    /// What one request sent and got back.
    struct Exchange: Sendable {
        let plan: Plan
        var status = 0
        var lines: [String] = []
        var error: String?

        /// The request id every service saw, when they agree and it is the expected one.
        func requestID(services: Int) -> Result<String, Problem> {
            if let error { return .failure(Problem("\(plan.name): \(error)")) }
            guard status == 200, lines.count == services else {
                return .failure(Problem("\(plan.name): status \(status), \(lines.count) lines: \(lines)"))
            }
            let prefix = "service-1: Hello, \(plan.name). tenant=\(plan.tenant ?? "-") request-id="
            guard lines[0].hasPrefix(prefix) else { return .failure(Problem("\(plan.name): \(lines[0])")) }
            let id = String(lines[0].dropFirst(prefix.count))
            if let expected = plan.requestID, id != expected {
                return .failure(Problem("\(plan.name): expected \(expected), saw \(id)"))
            }
            if plan.requestID == nil, UUID(uuidString: id) == nil {
                return .failure(Problem("\(plan.name): generated \(id) is no UUID"))
            }
            for (index, line) in lines.enumerated() {
                let expected =
                    "service-\(index + 1): Hello, \(plan.name). tenant=\(plan.tenant ?? "-") request-id=\(id)"
                guard line == expected else { return .failure(Problem("\(plan.name): \(line) instead of \(expected)")) }
            }
            return .success(id)
        }
    }

    struct Problem: Error, CustomStringConvertible {
        let description: String
        init(_ description: String) { self.description = description }
    }

    @Test(
        "1,000 requests, 64 in flight, mixed and malformed baggage: each log line carries its own request's values",
        .timeLimit(.minutes(3)),
        arguments: [2, 3]
    )
    func load(services: Int) async throws {
        let (exchanges, peak, duration, logs) = try await ServiceChain.run(services) { port, logs in
            let (exchanges, peak, duration) = try await Self.drive(port: port)
            return (exchanges, peak, duration, logs.map(\.entries))
        }

        // Answers: every service saw the values that were sent, or the one id the first generated.
        var problems: [String] = []
        var idOfName: [String: String] = [:]
        var tenantOfName: [String: String] = [:]
        for exchange in exchanges {
            switch exchange.requestID(services: services) {
            case .success(let id):
                idOfName[exchange.plan.name] = id
                tenantOfName[exchange.plan.name] = exchange.plan.tenant ?? "-"
            case .failure(let problem):
                problems.append(problem.description)
            }
        }
        let generated = exchanges.filter { $0.plan.requestID == nil }.compactMap { idOfName[$0.plan.name] }

        // Log lines: every line written for a request carries exactly that request's values, in
        // every service; a service that calls the next writes 4 lines a request, the last one 2.
        var logProblems: [String] = []
        var requestLines = 0
        for (index, entries) in logs.enumerated() {
            let service = "service-\(index + 1)"
            let linesPerRequest = index < services - 1 ? 4 : 2
            var count: [String: Int] = [:]
            for entry in entries {
                guard let name = entry.requestName else {
                    // The server's own lines ("Server started…") belong to no request.
                    if entry.tenant != "-" || entry.requestID != "-" {
                        logProblems.append("\(service): a line of no request carries values: \(entry)")
                    }
                    continue
                }
                requestLines += 1
                count[name, default: 0] += 1
                if entry.requestID != idOfName[name] || entry.tenant != tenantOfName[name] {
                    logProblems.append("\(service): line of \(name) carries someone else's values: \(entry)")
                }
            }
            for exchange in exchanges where count[exchange.plan.name] != linesPerRequest {
                let lines = count[exchange.plan.name] ?? 0
                logProblems.append("\(service): \(exchange.plan.name) has \(lines) lines, expected \(linesPerRequest)")
            }
        }

        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        let allLines = logs.map(\.count).reduce(0, +)
        print(
            """
            baggage chain of \(services) services: \(exchanges.count) requests, concurrency \(Self.concurrency) \
            (peak \(peak) in flight), \(problems.count) failures, \(String(format: "%.2f", seconds)) s \
            (\(Int(Double(exchanges.count) / seconds)) req/s); \(generated.count) ids generated \
            (\(Set(generated).count) distinct); \(allLines) log lines, \(requestLines) of them for requests \
            and checked, \(logProblems.count) log problems
            """
        )

        #expect(exchanges.count == Self.requests)
        #expect(peak >= Self.concurrency)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(generated.count == Self.requests * 3 / 8)
        #expect(Set(idOfName.values).count == Self.requests)
        #expect(logProblems.isEmpty, "\(logProblems.prefix(5))")
        #expect(requestLines == Self.requests * (4 * (services - 1) + 2))
    }

    @Test("the walkthrough: tenant=acme request-id=r-1 on every line of every service, and in the last answer")
    func walkthrough() async throws {
        let (body, logs) = try await ServiceChain.run(3) { port, logs in
            let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/hello/ann")
            request.headers.add(name: "baggage", value: "tenant=acme,request-id=r-1")
            let body: String
            do {
                let response = try await client.execute(request, timeout: .seconds(30))
                body = String(buffer: try await response.body.collect(upTo: 1 << 16))
            } catch {
                try await client.shutdown()
                throw error
            }
            try await client.shutdown()
            return (body, logs.map(\.entries))
        }
        #expect(body.split(separator: "\n").last == "service-3: Hello, ann. tenant=acme request-id=r-1")
        for entries in logs {
            let requestLines = entries.filter { $0.requestName != nil }
            #expect(!requestLines.isEmpty)
            #expect(requestLines.allSatisfy { $0.line.contains(": tenant=acme request-id=r-1 ") }, "\(requestLines)")
        }
    }

    /// Sends the planned requests from `concurrency` workers, each sending its share in turn.
    static func drive(port: Int) async throws -> (exchanges: [Exchange], peakInFlight: Int, duration: Duration) {
        var configuration = HTTPClient.Configuration()
        // The test's own client sends exactly the planned headers and nothing of its own.
        configuration.tracing.tracer = nil
        configuration.connectionPool = HTTPClient.Configuration.ConnectionPool(
            idleTimeout: .seconds(30),
            concurrentHTTP1ConnectionsPerHostSoftLimit: concurrency
        )
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let gauge = InFlightGauge()
        let start = ContinuousClock.now

        let exchanges = await withTaskGroup(of: [Exchange].self) { group in
            for worker in 0 ..< concurrency {
                group.addTask {
                    var done: [Exchange] = []
                    for index in stride(from: worker, to: requests, by: concurrency) {
                        var exchange = Exchange(plan: Plan(index))
                        gauge.enter()
                        do {
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/hello/\(exchange.plan.name)")
                            if let header = exchange.plan.header {
                                request.headers.add(name: "baggage", value: header)
                            }
                            let response = try await client.execute(request, timeout: .seconds(30))
                            exchange.status = Int(response.status.code)
                            let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                            exchange.lines = body.split(separator: "\n").map(String.init)
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
