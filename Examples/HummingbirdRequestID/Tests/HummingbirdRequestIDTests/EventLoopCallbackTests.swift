import HTTPTypes
import Hummingbird
import HummingbirdRequestID
import HummingbirdTesting
import Logging
import NIOCore
import NIOPosix
import Testing

/// The `greet-later` routes, whose handlers log from `EventLoopFuture` callbacks on one event loop.
@Suite("greet-later: logging from EventLoopFuture callbacks on a shared event loop")
struct EventLoopCallbackTests {
    /// One request the test sends, and the id it sends with it.
    struct Sent {
        let path: String
        let name: String
        let id: String
    }

    @Test("without a snapshot a callback logs the id another request left on the loop's thread; with one, its own")
    func crossTalk() async throws {
        // Requests one after another on one loop: the order of every callback is fixed, so what
        // each line carries is too. A naive request's first callback logs before its hand-made
        // assignment (see `GreetLater.naive`), so it shows what the thread held before it: the id
        // the previous naive request assigned there, or none on a thread that never held one.
        let sent = [
            Sent(path: "/greet-later-naive/ann", name: "ann", id: "naive-1"),
            Sent(path: "/greet-later-naive/bob", name: "bob", id: "naive-2"),
            Sent(path: "/greet-later/cy", name: "cy", id: "snapshot-3"),
            Sent(path: "/greet-later-naive/dee", name: "dee", id: "naive-4"),
        ]
        let capture = LogCapture()
        try await withFreshLoop { store in
            let app = buildApplication(store: store, makeLogHandler: capture.makeLogHandler)
            try await app.test(.router) { client in
                for request in sent {
                    let headers: HTTPFields = [.xRequestID: request.id]
                    try await client.execute(uri: request.path, method: .get, headers: headers) { response in
                        #expect(response.status == .ok)
                        #expect(response.headers[.xRequestID] == request.id)
                    }
                }
            }
        }

        let entries = capture.entries
        /// The one line `name`'s request logged with `message`.
        func line(_ name: String, _ message: String) throws -> LogEntry {
            let lines = entries.filter { $0.metadata["name"] == name && $0.message == message }
            try #require(lines.count == 1, "\(name) \(message): \(lines)")
            return lines[0]
        }
        let idOfName = Dictionary(uniqueKeysWithValues: sent.map { ($0.name, $0.id) })
        let wrong = entries.filter { entry in
            entry.metadata["name"].map { idOfName[$0] != entry.requestID } ?? false
        }
        print("greet-later cross-talk, lines whose id is not their request's:")
        for entry in wrong {
            print("  name=\(entry.metadata["name"] ?? "?") request-id=\(entry.requestID ?? "-") \(entry.message)")
        }

        // The problem: the naive requests' first callbacks.
        // ann's ran first on a fresh loop thread: nothing stored there yet, so no id at all.
        #expect(try line("ann", "profile loaded").requestID == nil)
        // bob's shows ann's id: ann's callback assigned it to the thread and nothing took it back.
        #expect(try line("bob", "profile loaded").requestID == "naive-1")
        // dee's shows bob's: cy's callbacks ran in between, under a snapshot, and `run` put the
        // thread's own value back each time, so cy neither fixed nor disturbed the thread.
        #expect(try line("dee", "profile loaded").requestID == "naive-2")
        #expect(wrong.map(\.message) == ["profile loaded", "profile loaded", "profile loaded"])

        // The fix: cy's callbacks carry cy's id and user, as its task's line does, though the loop
        // thread held bob's id all along.
        for message in ["greeting later", "profile loaded", "greeting composed"] {
            #expect(try line("cy", message).requestID == "snapshot-3")
            #expect(try line("cy", message).metadata["user"] == "cy")
        }

        // The naive second callbacks read back the assignment their own first callback made, as no
        // other request's callback ran in between here; still without the user, which the task set
        // and the hand-made fix did not copy.
        for request in sent where request.name != "cy" {
            #expect(try line(request.name, "greeting later").metadata["user"] == request.name)
            #expect(try line(request.name, "greeting composed").requestID == request.id)
            #expect(try line(request.name, "greeting composed").metadata["user"] == nil)
        }
    }

    @Test("the snapshot route's response and every line carry the request's id, sent or generated")
    func snapshotRoute() async throws {
        let capture = LogCapture()
        let ids = try await withFreshLoop { store in
            let app = buildApplication(store: store, makeLogHandler: capture.makeLogHandler)
            return try await app.test(.router) { client in
                var ids: [String] = []
                for headers: HTTPFields in [[.xRequestID: "given-1"], [:]] {
                    try await client.execute(uri: "/greet-later/eve", method: .get, headers: headers) { response in
                        let id = try #require(response.headers[.xRequestID])
                        #expect(String(buffer: response.body) == "Hello, eve. Your request id is \(id).")
                        ids.append(id)
                    }
                }
                return ids
            }
        }
        #expect(ids.first == "given-1")
        #expect(Set(ids).count == 2)
        for id in ids {
            let lines = capture.entries.filter { $0.requestID == id }
            let messages = lines.map(\.message).sorted()
            #expect(messages == ["Request", "greeting composed", "greeting later", "profile loaded"])
            #expect(lines.filter { $0.metadata["user"] == "eve" }.count == 3)
        }
    }
}

/// Runs `body` with a ``ProfileStore`` on a new one-thread event loop, shut down afterwards.
///
/// A loop of its own per test: nothing else runs callbacks on its thread, and the thread holds no
/// value until a request's callback stores one.
func withFreshLoop<Result>(_ body: (ProfileStore) async throws -> Result) async throws -> Result {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    do {
        let result = try await body(ProfileStore(eventLoop: group.next()))
        try await group.shutdownGracefully()
        return result
    } catch {
        try? await group.shutdownGracefully()
        throw error
    }
}
