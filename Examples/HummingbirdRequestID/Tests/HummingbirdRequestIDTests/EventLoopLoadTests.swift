import HummingbirdRequestID
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// The `greet-later` routes under the load of ``RealServerLoadTests/loadOverLoopback()``: the real
/// server, real HTTP, 1,000 requests with 64 in flight, every request's callbacks taking turns on
/// one event loop thread.
extension RealServerLoadTests {
    /// The lines a `greet-later` handler logs from its callbacks, on the store's loop.
    static let callbackMessages: Set = ["profile loaded", "greeting composed"]

    @Test(
        "1,000 requests, 64 in flight, through event-loop callbacks: with the snapshot each line carries its own id",
        .timeLimit(.minutes(2))
    )
    func loadThroughEventLoopCallbacks() async throws {
        let capture = LogCapture()
        let (exchanges, peakInFlight, duration) = try await withFreshLoop { store in
            try await Self.withRealServer(store: store, capture: capture) { port in
                try await Self.drive(port: port, route: "greet-later")
            }
        }

        // The body's id is read in the last callback, so a right body is one more callback that
        // saw its request's id.
        let problems = exchanges.compactMap(\.problem)
        let idOfName = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.headerID ?? "?") })

        // Every line written for a request (Hummingbird's, the handler's in its task, and the two
        // from callbacks on the loop) carries exactly that request's id, and its user.
        let entries = capture.entries
        var callbackLines = 0
        var linesPerID: [String: Int] = [:]
        var logProblems: [String] = []
        for entry in entries {
            // Which request wrote the line, as the line itself says: the name the handler logs
            // with it (not read from the Local), or the path of Hummingbird's request line.
            let path = entry.metadata["hb.request.path"].map { String($0.dropFirst("/greet-later/".count)) }
            guard let name = entry.metadata["name"] ?? path else {
                // Only the server's own lines (started, shutting down) name no request.
                if entry.requestID != nil { logProblems.append("line of no request: \(entry)") }
                continue
            }
            if entry.requestID != idOfName[name] {
                logProblems.append("line of \(name) carries \(entry.requestID ?? "-"): \(entry)")
            }
            if Self.callbackMessages.contains(entry.message) {
                callbackLines += 1
                if entry.metadata["user"] != name {
                    logProblems.append("callback line of \(name) has user \(entry.metadata["user"] ?? "-")")
                }
            }
            linesPerID[entry.requestID ?? "-", default: 0] += 1
        }
        for exchange in exchanges where linesPerID[exchange.headerID ?? "?"] != 4 {
            logProblems.append("\(exchange.name): \(linesPerID[exchange.headerID ?? "?"] ?? 0) lines, expected 4")
        }

        print(
            """
            greet-later load (with snapshot): \(exchanges.count) requests, concurrency \(Self.concurrency) \
            (peak \(peakInFlight) in flight), \(problems.count) failures, \(Self.seconds(duration)) s; \
            \(entries.count) log lines, \(callbackLines) of them from event-loop callbacks, checked: \
            \(logProblems.count) with a wrong or missing id
            """
        )
        #expect(exchanges.count == Self.requests)
        #expect(peakInFlight >= Self.concurrency)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(Set(exchanges.compactMap(\.headerID)).count == Self.requests)
        #expect(callbackLines == Self.requests * 2)
        #expect(logProblems.isEmpty, "\(logProblems.prefix(5))")
    }

    @Test(
        "the same load without the snapshot: every first callback line carries another request's id, or none",
        .timeLimit(.minutes(2))
    )
    func naiveLoadThroughEventLoopCallbacks() async throws {
        let capture = LogCapture()
        let (exchanges, peakInFlight, duration) = try await withFreshLoop { store in
            try await Self.withRealServer(store: store, capture: capture) { port in
                try await Self.drive(port: port, route: "greet-later-naive")
            }
        }

        // The middleware still does its part: each response echoes its own id.
        let problems = exchanges.compactMap(\.idProblem)
        let idOfName = Dictionary(uniqueKeysWithValues: exchanges.map { ($0.name, $0.headerID ?? "?") })
        let ids = Set(idOfName.values)
        let entries = capture.entries
        func lines(_ message: String) -> [LogEntry] {
            entries.filter { $0.message == message }
        }
        func isOwn(_ entry: LogEntry) -> Bool {
            entry.metadata["name"].map { idOfName[$0] == entry.requestID } ?? false
        }

        // Whatever the interleaving, a naive first callback logs before its request assigns its id
        // to the thread, and no other request ever assigns that id: so it always shows the id of
        // the request whose callback assigned last, and only the very first, on a thread that held
        // nothing yet, shows none.
        let first = lines("profile loaded")
        let othersID = first.filter { !isOwn($0) && $0.requestID.map(ids.contains) == true }
        let missing = first.filter { $0.requestID == nil }
        // The second callback reads back its own assignment only if no other request's callback
        // assigned in between: how often that fails depends on the interleaving, so it is counted,
        // not asserted.
        let second = lines("greeting composed")
        let secondWrong = second.filter { !isOwn($0) }
        let wrongBodies = exchanges.filter { $0.body != "Hello, \($0.name). Your request id is \($0.headerID ?? "?")." }

        print(
            """
            greet-later-naive load (no snapshot): \(exchanges.count) requests, concurrency \(Self.concurrency) \
            (peak \(peakInFlight) in flight), \(problems.count) failures, \(Self.seconds(duration)) s; \
            first callback lines: \(othersID.count) with another request's id, \(missing.count) with none, \
            of \(first.count); second callback lines: \(secondWrong.count) wrong of \(second.count); \
            \(wrongBodies.count) bodies with another request's id
            """
        )
        for entry in othersID.prefix(3) + secondWrong.prefix(3) {
            print("  name=\(entry.metadata["name"] ?? "?") request-id=\(entry.requestID ?? "-") \(entry.message)")
        }
        #expect(exchanges.count == Self.requests)
        #expect(problems.isEmpty, "\(problems.prefix(5))")
        #expect(first.count == Self.requests)
        #expect(othersID.count == Self.requests - 1)
        #expect(missing.count == 1)
        #expect(second.count == Self.requests)
    }

    /// A duration in seconds, two decimals.
    static func seconds(_ duration: Duration) -> String {
        let seconds = Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
        return String(format: "%.2f", seconds)
    }
}
