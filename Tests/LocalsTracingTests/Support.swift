#if Tracing
import Instrumentation
import Locals
import LocalsTracing

/// What the tests' Locals hold per task.
struct TestRequest: Sendable {
    var tenant: String?
    var requestID: String?
    var priority: Int?
}

/// A second Local, to check that fields of several Locals travel together.
struct TestSession: Sendable {
    var region: String?
}

let testRequest = Local { TestRequest() }
let testSession = Local { TestSession() }

/// `tenant` and `request-id`, the two fields of the W3C table.
let testBaggage = LocalsBaggage([
    BaggageField("tenant", of: testRequest, at: \.tenant),
    BaggageField("request-id", of: testRequest, at: \.requestID),
])

/// A header map as carrier: one value per name, as most HTTP header types give it.
struct DictionaryExtractor: Extractor {
    func extract(key: String, from carrier: [String: String]) -> String? {
        carrier[key]
    }
}

struct DictionaryInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [String: String]) {
        carrier[key] = value
    }
}

/// A carrier that keeps every injected pair, to see how many headers were written.
struct ListInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout [(String, String)]) {
        carrier.append((key, value))
    }
}

/// The `baggage` header `baggage` injects for `context`, read in the current task.
func outgoingHeader(_ baggage: LocalsBaggage = testBaggage, context: ServiceContext? = nil) -> String? {
    var headers: [String: String] = [:]
    baggage.inject(context ?? ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
    return headers[LocalsBaggage.headerName]
}

/// The context `baggage` extracts from a request whose `baggage` header is `header`.
func extracted(_ header: String, by baggage: LocalsBaggage = testBaggage) -> ServiceContext {
    var context = ServiceContext.topLevel
    baggage.extract([LocalsBaggage.headerName: header], into: &context, using: DictionaryExtractor())
    return context
}
#endif
