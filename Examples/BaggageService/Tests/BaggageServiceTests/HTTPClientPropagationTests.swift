import AsyncHTTPClient
import BaggageService
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryTracing
import Instrumentation
import Locals
import LocalsTracing
import Logging
import Testing
import Tracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// What AsyncHTTPClient 1.37 puts on the wire, seen by a server that echoes the propagation headers.
@Suite("AsyncHTTPClient sends the baggage only through a tracer")
struct HTTPClientPropagationTests {
    /// A server on a free loopback port that answers `GET /echo` with the request's `baggage`
    /// and in-memory tracing headers, one `name: value` line each.
    static func withEchoServer<R: Sendable>(_ body: @Sendable (_ port: Int) async throws -> R) async throws -> R {
        let router = Router()
        router.get("echo") { request, _ -> String in
            request.headers
                .filter { $0.name.canonicalName == "baggage" || $0.name.canonicalName.hasPrefix("in-memory-") }
                .map { "\($0.name.canonicalName): \($0.value)" }
                .joined(separator: "\n")
        }
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            logger: Logger(label: "echo") { _ in SwiftLogNoOpLogHandler() }
        )
        return try await app.test(.live) { client in
            guard let port = client.port else { throw EchoServerHasNoPort() }
            return try await body(port)
        }
    }

    struct EchoServerHasNoPort: Error {}

    /// The propagation headers `client` sends for a call made inside a request that arrived with
    /// `baggage: tenant=acme,vendor=v;p=1`, and in which the handler set the request id.
    static func echoedInsideRequest(client: HTTPClient, port: Int) async throws -> [String] {
        var context = ServiceContext.topLevel
        requestBaggage.extract(["baggage": "tenant=acme,vendor=v;p=1"], into: &context, using: DictionaryExtractor())
        return try await requestBaggage.withValues(from: context) {
            currentRequest.requestID = "r-1"
            let request = HTTPClientRequest(url: "http://127.0.0.1:\(port)/echo")
            let response = try await client.execute(request, timeout: .seconds(30))
            let body = String(buffer: try await response.body.collect(upTo: 1 << 16))
            return body.split(separator: "\n").map(String.init)
        }
    }

    /// Runs `body` with a client, and shuts the client down whatever happens.
    static func withClient<R>(_ client: HTTPClient, _ body: (HTTPClient) async throws -> R) async throws -> R {
        let result: Result<R, any Error>
        do {
            result = .success(try await body(client))
        } catch {
            result = .failure(error)
        }
        try await client.shutdown()
        return try result.get()
    }

    @Test("with LocalsBaggageTracer, the client sends the request's fields and forwards the members it does not know")
    func sendsThroughTheTracer() async throws {
        let lines = try await Self.withEchoServer { port in
            try await Self.withClient(makeNextServiceClient(tracer: LocalsBaggageTracer(requestBaggage))) { client in
                try await Self.echoedInsideRequest(client: client, port: port)
            }
        }
        #expect(lines == ["baggage: tenant=acme,request-id=r-1,vendor=v;p=1"])
    }

    @Test("wrapping a real tracer: its trace headers and the baggage go out together, and it records the client span")
    func wrapsARealTracer() async throws {
        let tracer = LocalsBaggageTracer(requestBaggage, wrapping: InMemoryTracer())
        let lines = try await Self.withEchoServer { port in
            try await Self.withClient(makeNextServiceClient(tracer: tracer)) { client in
                try await Self.echoedInsideRequest(client: client, port: port)
            }
        }
        let span = try #require(tracer.wrapped.finishedSpans.first)
        #expect(tracer.wrapped.finishedSpans.count == 1)
        #expect(span.kind == .client)
        #expect(lines.sorted() == [
            "baggage: tenant=acme,request-id=r-1,vendor=v;p=1",
            "in-memory-span-id: \(span.spanID)",
            "in-memory-trace-id: \(span.traceID)",
        ])
    }

    @Test("with no tracer that carries it (NoOpTracer, what a process without a bootstrap has), nothing is sent")
    func nothingWithoutTheTracer() async throws {
        let lines = try await Self.withEchoServer { port in
            try await Self.withClient(makeNextServiceClient(tracer: NoOpTracer())) { client in
                try await Self.echoedInsideRequest(client: client, port: port)
            }
        }
        #expect(lines.isEmpty)
    }

    @Test("bootstrapped process-wide as a plain Instrument, LocalsBaggage is skipped: the client sends nothing")
    func plainInstrumentIsSkipped() async {
        // A process of its own: InstrumentationSystem can be bootstrapped once per process.
        await #expect(processExitsWith: .exitCode(3)) {
            InstrumentationSystem.bootstrap(requestBaggage)
            let lines = try await HTTPClientPropagationTests.withEchoServer { port in
                // Made after the bootstrap, as a server's client is: it takes InstrumentationSystem.tracer.
                let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
                return try await HTTPClientPropagationTests.withClient(client) { client in
                    try await HTTPClientPropagationTests.echoedInsideRequest(client: client, port: port)
                }
            }
            exit(lines.isEmpty ? 3 : 4)
        }
    }

    @Test("bootstrapped process-wide as LocalsBaggageTracer, a client with the default configuration sends it")
    func bootstrappedTracerIsUsed() async {
        await #expect(processExitsWith: .exitCode(3)) {
            InstrumentationSystem.bootstrap(LocalsBaggageTracer(requestBaggage))
            let lines = try await HTTPClientPropagationTests.withEchoServer { port in
                let client = HTTPClient(eventLoopGroup: HTTPClient.defaultEventLoopGroup)
                return try await HTTPClientPropagationTests.withClient(client) { client in
                    try await HTTPClientPropagationTests.echoedInsideRequest(client: client, port: port)
                }
            }
            exit(lines == ["baggage: tenant=acme,request-id=r-1,vendor=v;p=1"] ? 3 : 4)
        }
    }
}

/// A header map as carrier.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}
