#if Tracing
import Instrumentation
import Locals
import LocalsTracing
import Testing

@Suite("BaggageField: keys and conversions")
struct BaggageFieldTests {
    @Test(
        "keys are non-empty RFC 7230 tokens",
        arguments: [
            ("tenant", true), ("request-id", true), ("X_b3.Sampled", true), ("!#$%&'*+-.^_`|~09azAZ", true),
            ("", false), ("two words", false), ("key=", false), ("a,b", false), ("a;b", false),
            ("quote\"", false), ("é", false), ("tab\t", false), ("(paren)", false),
        ]
    )
    func validKeys(_ key: String, _ valid: Bool) {
        #expect(BaggageField.isValidKey(key) == valid)
    }

    @Test("a field with a key that is not a token stops the program")
    func invalidKeyStops() async {
        await #expect(processExitsWith: .failure) {
            _ = BaggageField("two words", of: testRequest, at: \.tenant)
        }
    }

    @Test("two fields with one key stop the program")
    func duplicateKeyStops() async {
        await #expect(processExitsWith: .failure) {
            _ = LocalsBaggage([
                BaggageField("tenant", of: testRequest, at: \.tenant),
                BaggageField("tenant", of: testSession, at: \.region),
            ])
        }
    }

    @Test("custom conversions: encode decides what is sent, decode what is accepted")
    func customConversions() async {
        let baggage = LocalsBaggage([
            BaggageField(
                "tenant", of: testRequest, at: \.tenant,
                encode: { $0.map { $0.uppercased() } },
                decode: { $0.hasPrefix("T-") ? .some($0.lowercased()) : nil }
            )
        ])
        let accepted = await baggage.withValues(from: extracted("tenant=T-Acme", by: baggage)) {
            (testRequest.tenant, outgoingHeader(baggage))
        }
        let refused = await baggage.withValues(from: extracted("tenant=acme", by: baggage)) {
            (testRequest.tenant, outgoingHeader(baggage))
        }
        #expect(accepted.0 == "t-acme" && accepted.1 == "tenant=T-ACME")
        #expect(refused.0 == nil && refused.1 == nil)
    }

    @Test("optional LosslessStringConvertible fields: nil is not sent, what does not parse is refused")
    func losslessFields() async {
        let baggage = LocalsBaggage([BaggageField("priority", of: testRequest, at: \.priority)])
        let seen = await baggage.withValues(from: extracted("priority=-12", by: baggage)) {
            (testRequest.priority, outgoingHeader(baggage))
        }
        #expect(seen.0 == -12 && seen.1 == "priority=-12")
        let refused = await baggage.withValues(from: extracted("priority=1.5", by: baggage)) { testRequest.priority }
        #expect(refused == nil)
        #expect(outgoingHeader(baggage) == nil)
    }

    @Test("the instrument lists its fields in the order given")
    func fieldOrder() {
        #expect(mixedBaggage.fields.map(\.key) == ["tenant", "region", "priority"])
    }
}
#endif
