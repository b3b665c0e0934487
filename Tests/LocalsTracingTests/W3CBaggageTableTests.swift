#if Tracing
import Instrumentation
import Locals
import LocalsTracing
import Testing

/// One received `baggage` header and everything the instrument must make of it.
struct BaggageCase: Sendable, CustomTestStringConvertible {
    let name: String
    let header: String
    /// What the Local reads inside the request's scope.
    var tenant: String? = nil
    var requestID: String? = nil
    /// The members forwarded unchanged.
    var passThrough: [String] = []
    /// The header sent on an outgoing call made inside the scope; nil for none.
    let outgoing: String?

    var testDescription: String { name }
}

extension BaggageCase {
    static let valid: [BaggageCase] = [
        .init(
            name: "two fields",
            header: "tenant=acme,request-id=r-1",
            tenant: "acme", requestID: "r-1",
            outgoing: "tenant=acme,request-id=r-1"
        ),
        .init(
            name: "fields go out in the order they were declared",
            header: "request-id=r-1,tenant=acme",
            tenant: "acme", requestID: "r-1",
            outgoing: "tenant=acme,request-id=r-1"
        ),
        .init(
            name: "spaces and tabs around members, keys and values are trimmed",
            header: " \ttenant \t= acme\t , request-id =r-1 ",
            tenant: "acme", requestID: "r-1",
            outgoing: "tenant=acme,request-id=r-1"
        ),
        .init(
            name: "unknown members pass through with their properties, in order",
            header: "tenant=acme,vendor=v1;ttl=3;sampled,other=x",
            tenant: "acme",
            passThrough: ["vendor=v1;ttl=3;sampled", "other=x"],
            outgoing: "tenant=acme,vendor=v1;ttl=3;sampled,other=x"
        ),
        .init(
            name: "an unknown member is forwarded byte for byte, inner whitespace included",
            header: "k1 = v1 ; p1 = x ;p2",
            passThrough: ["k1 = v1 ; p1 = x ;p2"],
            outgoing: "k1 = v1 ; p1 = x ;p2"
        ),
        .init(
            name: "properties of a field's member are ignored",
            header: "tenant = acme ; region=eu ; pinned",
            tenant: "acme",
            outgoing: "tenant=acme"
        ),
        .init(
            name: "a percent-encoded value is decoded, and encoded again on the way out",
            header: "tenant=Acme%20Corp%2C%20Inc.",
            tenant: "Acme Corp, Inc.",
            outgoing: "tenant=Acme%20Corp%2C%20Inc."
        ),
        .init(
            name: "percent-encoded UTF-8",
            header: "tenant=caf%C3%A9",
            tenant: "café",
            outgoing: "tenant=caf%C3%A9"
        ),
        .init(
            name: "lowercase escapes are read, uppercase ones are written",
            header: "tenant=caf%c3%a9",
            tenant: "café",
            outgoing: "tenant=caf%C3%A9"
        ),
        .init(
            name: "escapes that were not needed are not written again",
            header: "tenant=%61cme",
            tenant: "acme",
            outgoing: "tenant=acme"
        ),
        .init(
            name: "a value may contain equal signs",
            header: "tenant=a=b==",
            tenant: "a=b==",
            outgoing: "tenant=a=b=="
        ),
        .init(
            name: "an empty value is a value",
            header: "tenant=",
            tenant: "",
            outgoing: "tenant="
        ),
        .init(
            name: "an encoded percent sign",
            header: "tenant=100%25",
            tenant: "100%",
            outgoing: "tenant=100%25"
        ),
        .init(
            name: "octets that are not UTF-8 decode to U+FFFD",
            header: "tenant=a%FFb",
            tenant: "a\u{FFFD}b",
            outgoing: "tenant=a%EF%BF%BDb"
        ),
        .init(
            name: "an unknown member keeps its escapes as they were",
            header: "vendor=caf%c3%a9",
            passThrough: ["vendor=caf%c3%a9"],
            outgoing: "vendor=caf%c3%a9"
        ),
        .init(
            name: "keys are case-sensitive",
            header: "Tenant=acme",
            passThrough: ["Tenant=acme"],
            outgoing: "Tenant=acme"
        ),
    ]

    static let edge: [BaggageCase] = [
        .init(name: "an empty header", header: "", outgoing: nil),
        .init(name: "only whitespace", header: " \t ", outgoing: nil),
        .init(name: "only commas", header: ",, ,", outgoing: nil),
        .init(
            name: "empty members are skipped",
            header: ",tenant=acme,, ,request-id=r-1,",
            tenant: "acme", requestID: "r-1",
            outgoing: "tenant=acme,request-id=r-1"
        ),
        .init(
            name: "a duplicate key: the last value wins",
            header: "tenant=first,request-id=r-1,tenant=second",
            tenant: "second", requestID: "r-1",
            outgoing: "tenant=second,request-id=r-1"
        ),
        .init(
            name: "a duplicate unknown key: the last member wins, where the key first appeared",
            header: "a=1;p,b=2,a=3",
            passThrough: ["a=3", "b=2"],
            outgoing: "a=3,b=2"
        ),
        .init(
            name: "a malformed duplicate is no member, so the earlier one stands",
            header: "tenant=acme,tenant=bad value",
            tenant: "acme",
            outgoing: "tenant=acme"
        ),
        .init(
            name: "a rejected duplicate still wins, so the field is absent",
            header: "tenant=acme,tenant=a%0Ab",
            outgoing: nil
        ),
        .init(
            name: "an escaped newline in an unknown member is forwarded, still escaped",
            header: "vendor=a%0Ab",
            passThrough: ["vendor=a%0Ab"],
            outgoing: "vendor=a%0Ab"
        ),
        .init(
            name: "a duplicate among many members: the last wins, where the key first appeared",
            header: ((0 ..< 20).map { "k\($0)=v" } + ["k3=last"]).joined(separator: ","),
            passThrough: (0 ..< 20).map { $0 == 3 ? "k3=last" : "k\($0)=v" },
            outgoing: (0 ..< 20).map { $0 == 3 ? "k3=last" : "k\($0)=v" }.joined(separator: ",")
        ),
        .init(
            name: "64 members are all kept",
            header: (0 ..< 64).map { "k\($0)=v" }.joined(separator: ","),
            passThrough: (0 ..< 64).map { "k\($0)=v" },
            outgoing: (0 ..< 64).map { "k\($0)=v" }.joined(separator: ",")
        ),
        .init(
            name: "members after the 64th are dropped",
            header: (0 ..< 70).map { "k\($0)=v" }.joined(separator: ","),
            passThrough: (0 ..< 64).map { "k\($0)=v" },
            outgoing: (0 ..< 64).map { "k\($0)=v" }.joined(separator: ",")
        ),
        .init(
            name: "a field after the 64th member is dropped",
            header: ((0 ..< 64).map { "k\($0)=v" } + ["tenant=acme"]).joined(separator: ","),
            passThrough: (0 ..< 64).map { "k\($0)=v" },
            outgoing: (0 ..< 64).map { "k\($0)=v" }.joined(separator: ",")
        ),
        .init(
            name: "a member of exactly 8,192 bytes is kept",
            header: "a=" + String(repeating: "x", count: 8_190),
            passThrough: ["a=" + String(repeating: "x", count: 8_190)],
            outgoing: "a=" + String(repeating: "x", count: 8_190)
        ),
        .init(
            name: "a member of 8,193 bytes is dropped whole, never cut",
            header: "a=" + String(repeating: "x", count: 8_191) + ",tenant=acme",
            tenant: "acme",
            outgoing: "tenant=acme"
        ),
        .init(
            name: "a member that would pass 8,192 bytes is dropped, and later ones that fit are kept",
            header: "a=\(String(repeating: "x", count: 8_000)),b=\(String(repeating: "y", count: 200)),c=1",
            passThrough: ["a=" + String(repeating: "x", count: 8_000), "c=1"],
            outgoing: "a=\(String(repeating: "x", count: 8_000)),c=1"
        ),
    ]

    /// Each malformed member sits beside a well-formed `request-id`, which must survive it.
    static let malformed: [BaggageCase] = [
        ("a space inside a value", "tenant=ac me"),
        ("no equal sign", "tenant"),
        ("an empty key", "=acme"),
        ("a space inside a key", "ten ant=acme"),
        ("a key with a character outside token", "ten@nt=acme"),
        ("a quoted value", "tenant=\"acme\""),
        ("a backslash", "tenant=a\\b"),
        ("a tab inside a value", "tenant=a\tb"),
        ("an escape that is not hexadecimal", "tenant=%zz"),
        ("a cut escape", "tenant=abc%4"),
        ("a lone percent sign", "tenant=abc%"),
        ("a bad escape in a property value", "vendor=x;p=%G1"),
        ("an empty property", "vendor=x;"),
        ("a property without a key", "vendor=x;=y"),
        ("an escaped newline in a field", "tenant=a%0Ab"),
        ("an escaped carriage return in a field", "tenant=a%0Db"),
        ("an escaped NUL in a field", "tenant=a%00b"),
        ("an escaped DEL in a field", "tenant=a%7Fb"),
        ("an escaped C1 control (NEL) in a field", "tenant=a%C2%85b"),
        ("an escaped line separator in a field", "tenant=a%E2%80%A8b"),
        ("an escaped paragraph separator in a field", "tenant=a%E2%80%A9b"),
        ("a raw newline", "tenant=a\nb"),
        ("a raw CR LF trying to start a header", "tenant=acme\r\nX-Injected: 1"),
        ("a raw NUL", "tenant=a\u{0}b"),
        ("a raw DEL", "tenant=a\u{7F}b"),
        ("raw non-ASCII", "tenant=café"),
    ].map { name, member in
        BaggageCase(
            name: name,
            header: "\(member),request-id=r-1",
            requestID: "r-1",
            outgoing: "request-id=r-1"
        )
    }
}

@Suite("The W3C baggage table: what is kept, bound, forwarded and sent")
struct W3CBaggageTableTests {
    @Test("valid headers", arguments: BaggageCase.valid)
    func valid(_ row: BaggageCase) async {
        await check(row)
    }

    @Test("edge cases: empty, duplicates, limits", arguments: BaggageCase.edge)
    func edge(_ row: BaggageCase) async {
        await check(row)
    }

    @Test("a malformed member is dropped and the well-formed one beside it kept", arguments: BaggageCase.malformed)
    func malformed(_ row: BaggageCase) async {
        await check(row)
    }

    /// Extracts `row.header`, binds it, and injects for an outgoing call inside the scope.
    func check(_ row: BaggageCase) async {
        let context = extracted(row.header)
        #expect(context.extractedBaggage?.value(forKey: "tenant") == row.tenant)
        #expect(context.extractedBaggage?.value(forKey: "request-id") == row.requestID)
        #expect((context.extractedBaggage?.passThrough ?? []) == row.passThrough)
        let nothingKept = row.tenant == nil && row.requestID == nil && row.passThrough.isEmpty
        #expect((context.extractedBaggage == nil) == nothingKept)

        let (tenant, requestID, outgoing) = await testBaggage.withValues(from: context) {
            (testRequest.tenant, testRequest.requestID, outgoingHeader())
        }
        #expect(tenant == row.tenant)
        #expect(requestID == row.requestID)
        #expect(outgoing == row.outgoing)
        // The scope is over: the task's own values are back.
        #expect(testRequest.tenant == nil && testRequest.requestID == nil)
    }
}
#endif
