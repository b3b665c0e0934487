import BaggageService
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import InMemoryTracing
import Instrumentation
import LocalsTracing
import Logging
import NIOCore
import Testing
import Tracing

@Suite("BaggageMiddleware, through Hummingbird's router test framework")
struct MiddlewareTests {
    static let baggage = HTTPField.Name("baggage")!

    @Test("an error response is made inside the scope: its request log line carries the values")
    func errorsStayInside() async throws {
        let capture = LogCapture()
        let app = buildApplication(
            service: "service-1",
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            makeLogHandler: capture.makeLogHandler
        )
        try await app.test(.router) { client in
            try await client.execute(
                uri: "/nowhere", method: .get, headers: [Self.baggage: "tenant=acme,request-id=r-404"]
            ) { response in
                #expect(response.status == .notFound)
            }
        }
        let lines = capture.entries.filter { $0.metadata["hb.request.path"] == "/nowhere" }
        #expect(lines.count == 1)
        #expect(lines.allSatisfy { $0.tenant == "acme" && $0.requestID == "r-404" })
    }

    @Test("behind Hummingbird's TracingMiddleware, the span stays and the fields are bound")
    func behindTracingMiddleware() async throws {
        let tracer = LocalsBaggageTracer(requestBaggage, wrapping: InMemoryTracer())
        let router = Router()
        router.add(middleware: TracingMiddleware())
        router.add(middleware: BaggageMiddleware(requestBaggage))
        router.get("who") { _, _ -> String in
            let trace = ServiceContext.current?.inMemorySpanContext?.traceID ?? "-"
            return "\(currentRequest.tenant ?? "-") \(currentRequest.requestID ?? "-") \(trace)"
        }
        let app = Application(router: router, logger: Logger(label: "test") { _ in SwiftLogNoOpLogHandler() })
        let body = try await withTracer(tracer) {
            try await app.test(.router) { client in
                try await client.execute(
                    uri: "/who",
                    method: .get,
                    headers: [
                        Self.baggage: "tenant=acme,request-id=r-1",
                        HTTPField.Name(InMemoryTracer.traceIDKey)!: "trace-from-caller",
                        HTTPField.Name(InMemoryTracer.spanIDKey)!: "span-of-caller",
                    ]
                ) { response in
                    String(buffer: response.body)
                }
            }
        }
        #expect(body == "acme r-1 trace-from-caller")
        #expect(tracer.wrapped.finishedSpans.map(\.traceID) == ["trace-from-caller"])
    }
}
