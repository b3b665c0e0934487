import AsyncHTTPClient
import BaggageService
import Instrumentation
import Locals
import LocalsTracing
import Logging
import NIOCore
import OTel
import ServiceLifecycle
import Testing
import Tracing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// swift-otel's tracing backend, wrapped in `LocalsBaggageTracer` and bootstrapped, exporting over
/// OTLP/HTTP to a receiver in the same process; the assertions read what the receiver collected.
@Suite("swift-otel: spans exported over OTLP/HTTP carry the fields, in one trace across services")
struct OTelPipelineTests {
    static let services = 3
    static let requests = 8

    /// What one request sends: its own trace (a `traceparent` with a fresh trace id, as from a
    /// caller that traces) and its own baggage; the last request sends none, so the first service
    /// generates its id.
    struct Plan: Sendable {
        let name: String
        let tenant: String?
        let requestID: String?
        let traceID: String
        let parentID: String

        init(_ index: Int) {
            name = "user\(index)"
            if index < OTelPipelineTests.requests - 1 {
                (tenant, requestID) = ("t\(index)", "r-\(index)")
            } else {
                (tenant, requestID) = (nil, nil)
            }
            traceID = randomHex(bytes: 16)
            parentID = randomHex(bytes: 8)
        }

        var baggage: String? {
            guard let tenant, let requestID else { return nil }
            return "tenant=\(tenant),request-id=\(requestID)"
        }
    }

    /// A request and its answer: one line per service, each written from that service's Locals.
    struct Exchange: Sendable {
        let plan: Plan
        let status: Int
        let lines: [String]
    }

    @Test(
        "each request's server and client spans, in all three services, carry its tenant and id and share its trace",
        .timeLimit(.minutes(3))
    )
    func exportedSpans() async {
        // A process of its own: the test bootstraps InstrumentationSystem (and swift-otel the
        // logging and metrics systems), which a process can do once.
        await #expect(processExitsWith: .success) {
            let collector = OTLPCollector()
            let exchanges = try await collector.run { url in
                try await OTelPipelineTests.withOTel(collector: url) {
                    let tracer = InstrumentationSystem.tracer
                    return try await ServiceChain.run(OTelPipelineTests.services, tracer: tracer, tracing: true) { port, _ in
                        try await OTelPipelineTests.drive(port: port)
                    }
                }
            }
            try OTelPipelineTests.check(exchanges, collector.exports)
        }
    }

    /// Bootstraps swift-otel as the article "Callbacks, span attributes and swift-otel" shows,
    /// with every signal exported to `collector`, runs `body`, then shuts the backends down, which
    /// exports every span still waiting in the batch processor. `body` stops its servers before it
    /// returns, so every span has ended by then.
    static func withOTel<R: Sendable>(collector: String, _ body: () async throws -> R) async throws -> R {
        var configuration = OTel.Configuration.default
        configuration.serviceName = "baggage-service"
        configuration.diagnosticLogLevel = .warning
        configuration.logs.otlpExporter.endpoint = "\(collector)/v1/logs"
        configuration.metrics.otlpExporter.endpoint = "\(collector)/v1/metrics"
        configuration.traces.otlpExporter.endpoint = "\(collector)/v1/traces"

        configuration.traces.enabled = false  // OTel.bootstrap does logs and metrics
        let observability = try OTel.bootstrap(configuration: configuration)

        configuration.traces.enabled = true
        let tracing = try OTel.makeTracingBackend(configuration: configuration)  // not bootstrapped
        InstrumentationSystem.bootstrap(
            LocalsBaggageTracer(requestBaggage, wrapping: tracing.factory, spanAttributes: requestSpanAttributes)
        )

        let quiet = Logger(label: "otel") { _ in SwiftLogNoOpLogHandler() }
        let backends = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [observability, tracing.service],
                gracefulShutdownSignals: [],
                logger: quiet
            )
        )
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask { try await backends.run() }
            let result: Result<R, any Error>
            do {
                result = .success(try await body())
            } catch {
                result = .failure(error)
            }
            await backends.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }

    /// Sends every planned request to the first service at once, each with its `traceparent` and
    /// baggage, from a client that adds nothing of its own.
    static func drive(port: Int) async throws -> [Exchange] {
        var configuration = HTTPClient.Configuration()
        configuration.tracing.tracer = nil
        let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup, configuration: configuration)
        let result: Result<[Exchange], any Error>
        do {
            result = .success(
                try await withThrowingTaskGroup(of: Exchange.self) { group in
                    for index in 0 ..< requests {
                        group.addTask {
                            let plan = Plan(index)
                            var request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/hello/\(plan.name)")
                            request.headers.add(name: "traceparent", value: "00-\(plan.traceID)-\(plan.parentID)-01")
                            if let baggage = plan.baggage {
                                request.headers.add(name: "baggage", value: baggage)
                            }
                            let response = try await client.execute(request, timeout: .seconds(30))
                            let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
                            return Exchange(
                                plan: plan,
                                status: Int(response.status.code),
                                lines: body.split(separator: "\n").map(String.init)
                            )
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
            )
        } catch {
            result = .failure(error)
        }
        try await client.shutdown()
        return try result.get()
    }

    /// Every assertion, on the answers and on the spans the receiver collected.
    static func check(_ exchanges: [Exchange], _ exports: [OTLPCollector.Export]) throws {
        #expect(exchanges.count == requests, "\(exchanges.count) answers")

        // The exports: protobuf bodies to /v1/traces, from the configured service.
        let traceExports = exports.filter { $0.path == "/v1/traces" }
        #expect(!traceExports.isEmpty, "exports received: \(exports.map(\.path))")
        var spans: [OTLPTraces.Span] = []
        for export in traceExports {
            #expect(export.contentType == "application/x-protobuf", "content type \(export.contentType ?? "none")")
            for resourceSpans in try OTLPTraces(protobuf: export.body).resourceSpans {
                #expect(resourceSpans.resource["service.name"] == "baggage-service", "resource \(resourceSpans.resource)")
                spans += resourceSpans.spans
            }
        }

        // Every exported span belongs to one of the requests' traces: a server span in each
        // service and a client span in each that calls on, per request, and nothing else.
        let spansOfTrace = Dictionary(grouping: spans, by: \.traceID)
        let sentTraces = Set(exchanges.map(\.plan.traceID))
        #expect(Set(spansOfTrace.keys) == sentTraces, "traces \(spansOfTrace.keys.sorted()), sent \(sentTraces.sorted())")
        #expect(spans.count == requests * (2 * services - 1), "\(spans.count) spans")

        for exchange in exchanges {
            let plan = exchange.plan
            #expect(exchange.status == 200, "\(plan.name): status \(exchange.status), \(exchange.lines)")
            #expect(exchange.lines.count == services, "\(plan.name): \(exchange.lines)")
            // The id every service answered with: the one sent, or the one the first generated.
            let id = try #require(exchange.lines.first.flatMap(requestID(inAnswerLine:)), "\(plan.name): \(exchange.lines)")
            if let sent = plan.requestID {
                #expect(id == sent, "\(plan.name): answered with id \(id), sent \(sent)")
            } else {
                #expect(UUID(uuidString: id) != nil, "\(plan.name): generated id \(id)")
            }
            // Each service's Locals: the tenant and id that reached it, in its answer line.
            for (index, line) in exchange.lines.enumerated() {
                let expected = "service-\(index + 1): Hello, \(plan.name). tenant=\(plan.tenant ?? "-") request-id=\(id)"
                #expect(line == expected, "\(plan.name): \(line)")
            }

            // The trace, hop by hop: the first server span continues the caller's traceparent; each
            // client span is a child of its service's server span; the next service's server span
            // is a child of that client span (through the traceparent the client sent). Every span
            // carries the request's tenant and id, read from the Locals of the service that
            // started it, and so no other request's.
            let trace = spansOfTrace[plan.traceID] ?? []
            var parentID = plan.parentID
            for service in 1 ... services {
                let hop = "\(plan.name), service-\(service)"
                let servers = trace.filter { $0.kind == OTLPTraces.serverKind && $0.parentSpanID == parentID }
                let server = try #require(servers.first, "\(hop): no server span with parent \(parentID) in \(trace)")
                #expect(servers.count == 1, "\(hop): \(servers.count) server spans with parent \(parentID)")
                #expect(server.strings["url.path"] == "/hello/\(plan.name)", "\(hop): server span \(server.strings)")
                #expect(server.strings["tenant"] == plan.tenant, "\(hop): server span \(server.strings)")
                #expect(server.strings["request.id"] == id, "\(hop): server span \(server.strings)")
                guard service < services else { break }

                let clients = trace.filter { $0.kind == OTLPTraces.clientKind && $0.parentSpanID == server.spanID }
                let client = try #require(clients.first, "\(hop): no client span with parent \(server.spanID) in \(trace)")
                #expect(clients.count == 1, "\(hop): \(clients.count) client spans with parent \(server.spanID)")
                #expect(client.strings["tenant"] == plan.tenant, "\(hop): client span \(client.strings)")
                #expect(client.strings["request.id"] == id, "\(hop): client span \(client.strings)")
                parentID = client.spanID
            }
        }
    }

    /// `abc` in `service-1: Hello, ann. tenant=t request-id=abc`.
    static func requestID(inAnswerLine line: String) -> String? {
        line.range(of: " request-id=").map { String(line[$0.upperBound...]) }
    }
}

/// `bytes` random bytes as lowercase hex, not all zero (an all-zero id is invalid in `traceparent`).
func randomHex(bytes: Int) -> String {
    var generator = SystemRandomNumberGenerator()
    while true {
        let values = (0 ..< bytes).map { _ in UInt8.random(in: 0 ... 255, using: &generator) }
        if values.contains(where: { $0 != 0 }) {
            return values.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
        }
    }
}
