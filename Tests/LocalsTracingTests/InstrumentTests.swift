#if Tracing
import Instrumentation
import Locals
import LocalsTracing
import Testing

/// `tenant` and `priority` of ``testRequest`` plus `region` of ``testSession``: two Locals, and a
/// field that is not a string.
let mixedBaggage = LocalsBaggage([
    BaggageField("tenant", of: testRequest, at: \.tenant),
    BaggageField("region", of: testSession, at: \.region),
    BaggageField("priority", of: testRequest, at: \.priority),
])

/// A carrier holding each header line separately, as HTTP allows for `baggage`.
struct HeaderLinesExtractor: Extractor {
    func extract(key: String, from carrier: [(String, String)]) -> String? {
        let lines = carrier.filter { $0.0 == key }.map(\.1)
        // RFC 9110: lines of a list header combine with commas.
        return lines.isEmpty ? nil : lines.joined(separator: ", ")
    }
}

@Suite("LocalsBaggage as an Instrument: inject and extract")
struct InstrumentTests {
    @Test("an outgoing call carries what the calling task reads now, writes made during the request included")
    func injectsCurrentValues() async {
        let header = await testBaggage.withValues(from: extracted("tenant=acme")) {
            testRequest.requestID = "r-9"
            return outgoingHeader()
        }
        #expect(header == "tenant=acme,request-id=r-9")
    }

    @Test("nothing to send writes no header at all")
    func injectsNothing() {
        var carrier: [(String, String)] = []
        testBaggage.inject(.topLevel, into: &carrier, using: ListInjector())
        #expect(carrier.isEmpty)
    }

    @Test("a task's own write reaches the calls it makes, without any scope")
    func injectsPlainWrites() async {
        // Inject reads the calling task's value, scope or not; scopes only decide what children see.
        await Task {
            testRequest.tenant = "plain"
            #expect(outgoingHeader() == "tenant=plain")
        }.value
    }

    @Test("fields of several Locals travel together, each bound in its own Local")
    func severalLocals() async {
        let context = extracted("priority=7,region=eu-1,tenant=acme", by: mixedBaggage)
        let seen = await mixedBaggage.withValues(from: context) {
            (testRequest.tenant, testRequest.priority, testSession.region, outgoingHeader(mixedBaggage))
        }
        #expect(seen.0 == "acme")
        #expect(seen.1 == 7)
        #expect(seen.2 == "eu-1")
        // Fields of one Local are read together: the order is by Local, then by declaration.
        #expect(seen.3 == "tenant=acme,priority=7,region=eu-1")
    }

    @Test("a text the field's decode refuses leaves the attribute as it was, and is not forwarded")
    func decodeRejects() async {
        let context = extracted("priority=high,tenant=acme", by: mixedBaggage)
        #expect(context.extractedBaggage?.value(forKey: "priority") == "high")
        let seen = await testRequest.withValue(\.priority, 3) {
            await mixedBaggage.withValues(from: context) {
                (testRequest.priority, outgoingHeader(mixedBaggage))
            }
        }
        #expect(seen.0 == 3)
        #expect(seen.1 == "tenant=acme,priority=3")
    }

    @Test("accepting: refuses texts before they reach the Local")
    func acceptingRefuses() async {
        let strict = LocalsBaggage([
            BaggageField("request-id", of: testRequest, at: \.requestID, accepting: { $0.utf8.count <= 8 })
        ])
        let short = await strict.withValues(from: extracted("request-id=r-1", by: strict)) { testRequest.requestID }
        let long = await strict.withValues(from: extracted("request-id=r-123456789", by: strict)) {
            testRequest.requestID
        }
        #expect(short == "r-1")
        #expect(long == nil)
    }

    @Test("a member with a field's key is sent from the Local only, never also passed through")
    func fieldKeysNotPassedThrough() async {
        // Extracted by an instrument that does not know `tenant`, so it is a pass-through member.
        let other = LocalsBaggage([BaggageField("request-id", of: testRequest, at: \.requestID)])
        let context = extracted("tenant=upstream,vendor=v", by: other)
        #expect(context.extractedBaggage?.passThrough == ["tenant=upstream", "vendor=v"])
        let header = await testBaggage.withValues(from: .topLevel) {
            testRequest.tenant = "local"
            return outgoingHeader(context: context)
        }
        #expect(header == "tenant=local,vendor=v")
    }

    @Test("on the way out, fields come first and pass-through members fill what the limits leave")
    func injectLimitsFavourFields() async {
        let received = (0 ..< 63).map { "k\($0)=v" } + ["request-id=r-1"]
        let context = extracted(received.joined(separator: ","))
        #expect(context.extractedBaggage?.passThrough.count == 63)
        let header = await testBaggage.withValues(from: context) {
            testRequest.tenant = "acme"
            return outgoingHeader()
        }
        let expected = ["tenant=acme", "request-id=r-1"] + (0 ..< 62).map { "k\($0)=v" }
        #expect(header == expected.joined(separator: ","))
    }

    @Test("a field too long for 8,192 bytes is not sent, and the members that fit still are")
    func injectLimitsDropWholeMembers() async {
        let header = await testBaggage.withValues(from: extracted("vendor=v")) {
            testRequest.tenant = String(repeating: "t", count: 8_200)
            testRequest.requestID = "r-1"
            return outgoingHeader()
        }
        #expect(header == "request-id=r-1,vendor=v")
    }

    @Test(
        "any text survives the trip: percent-encoded on the way out, decoded on the way in",
        arguments: ["a b", "\"quoted\"", "semi;colon,comma", "back\\slash", "100%", "=", "é漢字🙂", " ", ""]
    )
    func roundTrip(_ text: String) async throws {
        let header = await testBaggage.withValues(from: .topLevel) {
            testRequest.tenant = text
            return outgoingHeader()
        }
        let sent = try #require(header)
        #expect(sent.utf8.allSatisfy { (0x21 ... 0x7E).contains($0) && $0 != 0x22 && $0 != 0x5C })
        #expect(!sent.contains(",") && !sent.contains(";"))
        let received = extracted(sent)
        #expect(received.extractedBaggage?.value(forKey: "tenant") == text)
    }

    @Test("header lines combined by the carrier are read as one list")
    func headerLines() {
        var context = ServiceContext.topLevel
        let lines = [("baggage", "tenant=acme"), ("other", "x"), ("baggage", "vendor=v;p, request-id=r-1")]
        testBaggage.extract(lines, into: &context, using: HeaderLinesExtractor())
        #expect(context.extractedBaggage?.fieldValues == ["tenant": "acme", "request-id": "r-1"])
        #expect(context.extractedBaggage?.passThrough == ["vendor=v;p"])
    }

    @Test("without a baggage header, or with nothing acceptable in it, extraction leaves the context alone")
    func extractLeavesContext() {
        var context = extracted("tenant=acme")
        let before = context.extractedBaggage
        testBaggage.extract([:], into: &context, using: DictionaryExtractor())
        #expect(context.extractedBaggage == before)
        testBaggage.extract(["baggage": "bad value, ,=x"], into: &context, using: DictionaryExtractor())
        #expect(context.extractedBaggage == before)
    }
}
#endif
