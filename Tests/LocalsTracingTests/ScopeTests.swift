#if Tracing
import Instrumentation
import Locals
import LocalsTracing
import Testing

/// A value of its own in a ServiceContext, to see what binding keeps.
enum MarkerKey: ServiceContextKey {
    typealias Value = String
}

struct Refused: Error, Equatable {
    let code: Int
}

/// Binds baggage from inside an actor; touching `handled` synchronously in the operation compiles
/// only because the operation runs on the actor.
actor Handler {
    var handled: [String?] = []

    func handle(_ context: ServiceContext) async {
        await testBaggage.withValues(from: context) {
            handled.append(testRequest.tenant)
        }
    }
}

@Suite("LocalsBaggage scopes: binding received values around a request")
struct ScopeTests {
    @Test("child tasks created inside the scope read the received values")
    func childrenInherit() async {
        let seen = await testBaggage.withValues(from: extracted("tenant=acme,request-id=r-1")) {
            async let child = testRequest.tenant
            let grouped = await withTaskGroup(of: String?.self) { group in
                group.addTask { testRequest.requestID }
                return await group.next() ?? nil
            }
            let unstructured = await Task { testRequest.tenant }.value
            let detached = await Task.detached { testRequest.tenant }.value
            return [await child, grouped, unstructured, detached]
        }
        #expect(seen == ["acme", "r-1", "acme", nil])
    }

    @Test("writes made inside stay inside: the next request starts from the task's own values")
    func writesStayInside() async {
        await testBaggage.withValues(from: extracted("tenant=first")) {
            testRequest.tenant = "overwritten"
            testRequest.priority = 1
        }
        #expect(testRequest.tenant == nil)
        #expect(testRequest.priority == nil)
        let second = await testBaggage.withValues(from: extracted("request-id=r-2")) {
            (testRequest.tenant, testRequest.requestID, testRequest.priority)
        }
        #expect(second.0 == nil && second.1 == "r-2" && second.2 == nil)
    }

    @Test("an attribute with no member keeps the value it had, and gets it back afterwards")
    func absentKeepsOuterValue() async {
        let seen = await testRequest.withValue(\.tenant, "outer") {
            let inner = await testBaggage.withValues(from: extracted("request-id=r-1")) { testRequest.tenant }
            return (inner, testRequest.tenant)
        }
        #expect(seen.0 == "outer" && seen.1 == "outer")
    }

    @Test("ServiceContext.current is the given context inside, and what it was outside")
    func bindsServiceContext() async {
        var context = extracted("vendor=v")
        context[MarkerKey.self] = "inner"
        let inside = await testBaggage.withValues(from: context) { ServiceContext.current }
        #expect(inside?[MarkerKey.self] == "inner")
        #expect(inside?.extractedBaggage?.passThrough == ["vendor=v"])
        #expect(ServiceContext.current == nil)
    }

    @Test("extractedFrom: only the carrier's baggage counts; the rest of the current context is kept")
    func extractedFromReplacesBaggage() async {
        var enclosing = extracted("tenant=enclosing,vendor=old")
        enclosing[MarkerKey.self] = "span of this request"
        let (withNone, withNew) = await ServiceContext.withValue(enclosing) {
            let withNone = await testBaggage.withValues(
                extractedFrom: [String: String](), using: DictionaryExtractor()
            ) {
                (testRequest.tenant, ServiceContext.current?.extractedBaggage, ServiceContext.current?[MarkerKey.self])
            }
            let withNew = await testBaggage.withValues(
                extractedFrom: ["baggage": "tenant=acme"], using: DictionaryExtractor()
            ) { (testRequest.tenant, outgoingHeader(), ServiceContext.current?[MarkerKey.self]) }
            return (withNone, withNew)
        }
        #expect(withNone.0 == nil)
        #expect(withNone.1 == nil)
        #expect(withNone.2 == "span of this request")
        #expect(withNew.0 == "acme")
        #expect(withNew.1 == "tenant=acme")
        #expect(withNew.2 == "span of this request")
    }

    @Test("an error thrown inside comes out with its own type, and the values are restored")
    func typedThrows() async {
        await #expect(throws: Refused(code: 7)) {
            try await testBaggage.withValues(from: extracted("tenant=acme")) { () throws(Refused) in
                #expect(testRequest.tenant == "acme")
                throw Refused(code: 7)
            }
        }
        #expect(testRequest.tenant == nil)
        #expect(ServiceContext.current == nil)
    }

    @Test("the operation runs on the caller's actor")
    func keepsIsolation() async {
        let handler = Handler()
        await handler.handle(extracted("tenant=acme"))
        await handler.handle(.topLevel)
        #expect(await handler.handled == ["acme", nil])
    }

    @Test("1,000 concurrent requests each see only their own values, in every child")
    func noCrossTalk() async {
        let mismatches = await withTaskGroup(of: Int.self) { group in
            for index in 0 ..< 1_000 {
                group.addTask {
                    let header = "tenant=t\(index % 7),request-id=r-\(index)"
                    return await testBaggage.withValues(from: extracted(header)) {
                        await withTaskGroup(of: Int.self) { children in
                            for _ in 0 ..< 3 {
                                children.addTask {
                                    await Task.yield()
                                    let ok = testRequest.requestID == "r-\(index)"
                                        && testRequest.tenant == "t\(index % 7)"
                                        && outgoingHeader() == header
                                    return ok ? 0 : 1
                                }
                            }
                            return await children.reduce(0, +)
                        }
                    }
                }
            }
            return await group.reduce(0, +)
        }
        #expect(mismatches == 0)
    }
}
#endif

#if Tracing
/// A session Local with a field, keyed by a session id in a task-local.
struct BaggageSessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    var currentKey: String? { Self.session }
}

let testCart = Local(BaggageSessionDiscriminator()) { TestSession() }

/// `tenant` of a task Local and `region` of a session Local.
let sessionBaggage = LocalsBaggage([
    BaggageField("tenant", of: testRequest, at: \.tenant),
    BaggageField("region", of: testCart, at: \.region),
])

@Suite("LocalsBaggage scopes on a session Local")
struct SessionScopeTests {
    #if compiler(>=6.2)
    @Test("where no session is current, a session Local's field is not bound, and binding does not stop")
    func noSessionIsSkipped() async {
        await #expect(processExitsWith: .success) {
            let seen = await sessionBaggage.withValues(
                extractedFrom: [LocalsBaggage.headerName: "tenant=acme,region=eu"],
                using: DictionaryExtractor()
            ) { [testRequest.tenant, testCart.region] }
            precondition(seen == ["acme", nil], "bound: \(seen)")
        }
    }
    #endif

    @Test("where a session is current, its field is bound in a scope of that session, and restored after")
    func currentSessionIsBound() async {
        let session = "baggage-\(UInt64.random(in: 0 ... .max))"
        await BaggageSessionDiscriminator.$session.withValue(session) {
            testCart.region = "home"
            let seen = await sessionBaggage.withValues(
                extractedFrom: [LocalsBaggage.headerName: "tenant=acme,region=eu"],
                using: DictionaryExtractor()
            ) { [testRequest.tenant, testCart.region] }
            #expect(seen == ["acme", "eu"])
            #expect(testCart.region == "home")
        }
    }
}
#endif
