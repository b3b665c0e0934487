#if Tracing
import InMemoryTracing
import Instrumentation
import Locals
import LocalsTracing
import Testing
import Tracing

@Suite("LocalsBaggageTracer with swift-distributed-tracing's InMemoryTracer")
struct TracerTests {
    @Test("spans are the wrapped tracer's; an injection writes its trace ids and the baggage")
    func injectsBoth() async throws {
        let tracer = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer())
        let headers = await testBaggage.withValues(from: extracted("tenant=acme,vendor=v")) {
            tracer.withSpan("GET /next", ofKind: .client) { span -> [String: String] in
                var headers: [String: String] = [:]
                tracer.inject(ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
                return headers
            }
        }
        let span = try #require(tracer.wrapped.finishedSpans.first)
        #expect(tracer.wrapped.finishedSpans.count == 1)
        #expect(span.operationName == "GET /next")
        #expect(headers[InMemoryTracer.traceIDKey] == span.traceID)
        #expect(headers[InMemoryTracer.spanIDKey] == span.spanID)
        #expect(headers["baggage"] == "tenant=acme,vendor=v")
        #expect(tracer.wrapped.performedContextInjections.count == 1)
    }

    @Test("an extraction reads the wrapped tracer's context and the baggage")
    func extractsBoth() {
        let tracer = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer())
        let headers = [
            InMemoryTracer.traceIDKey: "trace-9", InMemoryTracer.spanIDKey: "span-4",
            "baggage": "request-id=r-1,vendor=v",
        ]
        var context = ServiceContext.topLevel
        tracer.extract(headers, into: &context, using: DictionaryExtractor())
        let expected = InMemorySpanContext(traceID: "trace-9", spanID: "span-4", parentSpanID: nil)
        #expect(context.inMemorySpanContext == expected)
        #expect(context.extractedBaggage?.value(forKey: "request-id") == "r-1")
        #expect(context.extractedBaggage?.passThrough == ["vendor=v"])
        #expect(tracer.wrapped.performedContextExtractions.count == 1)
    }

    @Test("InstrumentationSystem.tracer finds the wrapper, so clients that inject through it send the baggage")
    func foundAsTheSystemTracer() async {
        let tracer = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer())
        let header = await withTracer(tracer) {
            await testBaggage.withValues(from: extracted("tenant=acme")) { () -> String? in
                // What AsyncHTTPClient does: take the system tracer, inject the current context.
                let system = InstrumentationSystem.tracer
                #expect(system is LocalsBaggageTracer<InMemoryTracer>)
                var headers: [String: String] = [:]
                system.inject(ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
                return headers["baggage"]
            }
        }
        #expect(header == "tenant=acme")
    }

    @Test("across three services, the trace and the fields travel together")
    func threeHops() async {
        let tracer = LocalsBaggageTracer(testBaggage, wrapping: InMemoryTracer())

        /// One service: extract, bind, handle in a server span, then call the next one.
        func serve(_ incoming: [String: String], hopsLeft: Int) async -> [String] {
            var context = ServiceContext.topLevel
            tracer.extract(incoming, into: &context, using: DictionaryExtractor())
            return await testBaggage.withValues(from: context) {
                await tracer.withSpan("serve", context: context, ofKind: .server) { _ in
                    let seen = "\(testRequest.tenant ?? "-") \(testRequest.requestID ?? "-")"
                    guard hopsLeft > 0 else { return [seen] }
                    var outgoing: [String: String] = [:]
                    tracer.inject(ServiceContext.current ?? .topLevel, into: &outgoing, using: DictionaryInjector())
                    return await [seen] + serve(outgoing, hopsLeft: hopsLeft - 1)
                }
            }
        }

        let seen = await serve(["baggage": "tenant=acme,request-id=r-1,vendor=v"], hopsLeft: 2)
        #expect(seen == ["acme r-1", "acme r-1", "acme r-1"])
        let spans = tracer.wrapped.finishedSpans
        #expect(spans.count == 3)
        #expect(Set(spans.map(\.traceID)).count == 1)
        // Every outgoing call also forwarded the unknown member.
        let sent = tracer.wrapped.performedContextInjections.map { $0.context.extractedBaggage?.passThrough }
        #expect(sent == [["vendor=v"], ["vendor=v"]])
    }

    @Test("wrapping NoOpTracer: baggage without tracing")
    func baggageOnly() async {
        let tracer = LocalsBaggageTracer(testBaggage)
        let headers = await testBaggage.withValues(from: extracted("request-id=r-1")) {
            tracer.withSpan("call") { span -> [String: String] in
                #expect(!span.isRecording)
                var headers: [String: String] = [:]
                tracer.inject(ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
                return headers
            }
        }
        #expect(headers == ["baggage": "request-id=r-1"])
    }
}
#endif
