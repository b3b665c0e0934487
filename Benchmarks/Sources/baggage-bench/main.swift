// baggage-bench: what LocalsBaggage costs per request, beside ServiceContext baselines measured
// in the same run. Run it in release mode on a quiet machine:
//
//     swift run -c release --package-path Benchmarks baggage-bench [--iterations N]
//
// Timings are medians of several rounds; they vary with the machine and its load, so compare the
// rows of one run with each other rather than across runs.

import Instrumentation
import Locals
import LocalsTracing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

struct RequestState: Sendable {
    var tenant: String?
    var requestID: String?
}

let request = Local { RequestState() }
let baggage = LocalsBaggage([
    BaggageField("tenant", of: request, at: \.tenant),
    BaggageField("request-id", of: request, at: \.requestID),
])

/// A realistic header: the two fields, and three members for other parties (one with a property).
let header = "tenant=acme,request-id=r-7f3a9c2e,sentry-trace_id=771a43a4192642f0b136d5159a501700,"
    + "vendor-sampled=1;ttl=30,region=eu-west-1"

/// A carrier of one header, so that the rows measure the instrument rather than a header map.
struct OneHeader: Sendable {
    var value: String?
}

struct OneHeaderExtractor: Extractor {
    func extract(key: String, from carrier: OneHeader) -> String? { carrier.value }
}

struct OneHeaderInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout OneHeader) { carrier.value = value }
}

enum MarkerKey: ServiceContextKey {
    typealias Value = String
}

@inline(never)
func blackHole<T>(_ value: T) {}

/// The operations per round: `--iterations N`, 200,000 by default.
let iterations: Int = {
    let arguments = Array(CommandLine.arguments.dropFirst())
    if arguments.isEmpty { return 200_000 }
    if arguments.count == 2, arguments[0] == "--iterations", let count = Int(arguments[1]), count > 0 {
        return count
    }
    print("usage: baggage-bench [--iterations N]   (N > 0; default 200000)")
    exit(2)
}()
let rounds = 7

/// The median over `rounds` rounds of the time per operation, in nanoseconds.
func measure(_ body: () -> Void) -> Double {
    for _ in 0 ..< iterations / 10 { body() }
    var perOperation: [Double] = []
    for _ in 0 ..< rounds {
        let start = ContinuousClock.now
        for _ in 0 ..< iterations { body() }
        let elapsed = ContinuousClock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        perOperation.append(nanoseconds / Double(iterations))
    }
    return perOperation.sorted()[rounds / 2]
}

func measureAsync(_ body: () async -> Void) async -> Double {
    for _ in 0 ..< iterations / 10 { await body() }
    var perOperation: [Double] = []
    for _ in 0 ..< rounds {
        let start = ContinuousClock.now
        for _ in 0 ..< iterations { await body() }
        let elapsed = ContinuousClock.now - start
        let nanoseconds = Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9
        perOperation.append(nanoseconds / Double(iterations))
    }
    return perOperation.sorted()[rounds / 2]
}

// Everything runs in a detached task: on the global executor, with no actor to hop to between the
// measured operations (top-level code would run them on the main actor).
await Task.detached {
    let incoming = OneHeader(value: header)
    var received = ServiceContext.topLevel
    baggage.extract(incoming, into: &received, using: OneHeaderExtractor())
    guard received.extractedBaggage?.fieldValues.count == 2, received.extractedBaggage?.passThrough.count == 3 else {
        fatalError("baggage-bench: the header did not parse as 2 fields and 3 pass-through members")
    }

    var rows: [(String, Double)] = []

    rows.append((
        "extract: parse the header into a ServiceContext",
        measure {
            var context = ServiceContext.topLevel
            baggage.extract(incoming, into: &context, using: OneHeaderExtractor())
            blackHole(context)
        }
    ))

    let outgoing: String? = await baggage.withValues(from: received) {
        var carrier = OneHeader()
        baggage.inject(received, into: &carrier, using: OneHeaderInjector())
        return carrier.value
    }
    guard outgoing == header else {
        fatalError("baggage-bench: injected \(outgoing ?? "nothing") instead of the received header")
    }

    let injectCost = await baggage.withValues(from: received) {
        measure {
            var carrier = OneHeader()
            baggage.inject(received, into: &carrier, using: OneHeaderInjector())
            blackHole(carrier)
        }
    }
    rows.append(("inject: read the Locals, encode, add the pass-through members", injectCost))

    rows.append((
        "bind: withValues(from:) around an empty operation",
        await measureAsync {
            await baggage.withValues(from: received) { () async -> Void in blackHole(0) }
        }
    ))

    rows.append((
        "baseline: ServiceContext.withValue (bind and unbind, sync)",
        measure {
            ServiceContext.withValue(received) { blackHole(0) }
        }
    ))

    rows.append((
        "baseline: ServiceContext.withValue (bind and unbind, async)",
        await measureAsync {
            await ServiceContext.withValue(received) { () async -> Void in blackHole(0) }
        }
    ))

    rows.append((
        "baseline: a top-level ServiceContext with one value set",
        measure {
            var context = ServiceContext.topLevel
            context[MarkerKey.self] = "acme"
            blackHole(context)
        }
    ))

    rows.append((
        "baseline: Local.withValues on one Local (async)",
        await measureAsync {
            await request.withValues({ $0.tenant = "acme" }) { () async -> Void in blackHole(0) }
        }
    ))

    print("baggage-bench: \(header.utf8.count)-byte header, 2 fields and 3 pass-through members;")
    print("median of \(rounds) rounds of \(iterations) operations each, in ns per operation")
    let width = rows.map(\.0.count).max() ?? 0
    for (name, nanoseconds) in rows {
        let padded = name + String(repeating: " ", count: width - name.count)
        let value = (nanoseconds * 10).rounded() / 10
        print("\(padded)  \(value)")
    }
}.value
