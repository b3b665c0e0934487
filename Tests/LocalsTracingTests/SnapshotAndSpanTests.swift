#if Tracing
import Dispatch
import InMemoryTracing
import Instrumentation
import Locals
import LocalsTracing
import Testing
import Tracing

/// Runs `body` on a plain thread of a dispatch queue (outside any task), and returns its result.
func onQueue<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

let attributeFields = [
    LocalField("tenant", of: testRequest, at: \.tenant),
    LocalField("request.id", of: testRequest, at: \.requestID),
]

@Suite("LocalsTracing: the service context in snapshots, fields as span attributes, sent-only fields")
struct SnapshotAndSpanTests {
    @Test("a snapshot carries ServiceContext.current into a callback: an outgoing call there sends the request's baggage")
    func snapshotCarriesContext() async {
        let snapshot = await testBaggage.withValues(from: extracted("tenant=acme,vendor=v")) {
            LocalsSnapshot.capture()
        }
        let seen = await onQueue { () -> [String?] in
            let inside = snapshot.run { [outgoingHeader(), ServiceContext.current?.extractedBaggage?.passThrough.joined(separator: ",")] }
            return inside + [outgoingHeader(), ServiceContext.current?.extractedBaggage?.passThrough.joined(separator: ",")]
        }
        #expect(seen == ["tenant=acme,vendor=v", "vendor=v", nil, nil])
    }

    @Test("an empty snapshot runs without the request's service context")
    func emptySnapshot() async {
        _ = LocalsBaggage([])  // registers ServiceContext.current, as any instrument of this module does
        let seen = await testBaggage.withValues(from: extracted("tenant=acme,vendor=v")) { () async -> [Bool] in
            let empty = await LocalsSnapshot().run { () async -> Bool in ServiceContext.current == nil }
            return [empty, ServiceContext.current == nil]
        }
        #expect(seen == [true, false])
    }

    @Test("the wrapper sets the fields the starting task sees on every span it starts; a nil field is left out")
    func spanAttributes() async throws {
        let tracer = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer(), spanAttributes: attributeFields)
        await testRequest.withValue(\.tenant, "acme") {
            await Task { tracer.withSpan("in a child") { _ in } }.value
        }
        tracer.withSpan("outside") { _ in }
        let spans = tracer.wrapped.finishedSpans
        #expect(spans.map(\.operationName) == ["in a child", "outside"])
        #expect(spans.first?.attributes["tenant"]?.toSpanAttribute() == .string("acme"))
        #expect(spans.first?.attributes["request.id"] == nil)
        #expect(spans.last?.attributes["tenant"] == nil)
    }

    @Test("Span.setAttributes(from:) sets the fields on a span of any tracer")
    func setAttributes() throws {
        let tracer = InMemoryTracer()
        testRequest.withValues({ $0.tenant = "acme"; $0.requestID = "r-1" }) {
            tracer.withSpan("op") { span in span.setAttributes(from: attributeFields) }
        }
        let span = try #require(tracer.finishedSpans.first)
        #expect(span.attributes["tenant"]?.toSpanAttribute() == .string("acme"))
        #expect(span.attributes["request.id"]?.toSpanAttribute() == .string("r-1"))
    }

    @Test("inside withTracer of another tracer the wrapper is bypassed: no baggage and no attributes")
    func withTracerBypasses() async {
        let wrapper = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer(), spanAttributes: attributeFields)
        let other = InMemoryTracer()
        let headers = await testBaggage.withValues(from: extracted("tenant=acme")) { () async -> [String?] in
            func injectedBaggage() -> String? {
                var headers: [String: String] = [:]
                InstrumentationSystem.tracer.inject(ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
                InstrumentationSystem.tracer.withSpan("op") { _ in }
                return headers["baggage"]
            }
            return [withTracer(other) { injectedBaggage() }, withTracer(wrapper) { injectedBaggage() }]
        }
        #expect(headers == [nil, "tenant=acme"])
        #expect(other.finishedSpans.first?.attributes["tenant"] == nil)
        #expect(wrapper.wrapped.finishedSpans.first?.attributes["tenant"]?.toSpanAttribute() == .string("acme"))
    }

    @Test("a sent-only field travels from its Local; a received member with its key is dropped, not bound or forwarded")
    func sentOnly() async {
        let baggage = LocalsBaggage([
            BaggageField("tenant", of: testRequest, at: \.tenant),
            BaggageField(sending: LocalField("priority", of: testRequest, at: \.priority)),
        ])
        let seen = await baggage.withValues(from: extracted("tenant=acme,priority=9,vendor=v", by: baggage)) {
            () async -> [String?] in
            let before = outgoingHeader(baggage)
            testRequest.priority = 2
            return [testRequest.priority.map(String.init), before, outgoingHeader(baggage)]
        }
        #expect(seen == ["2", "tenant=acme,vendor=v", "tenant=acme,priority=2,vendor=v"])
    }
}
#endif
