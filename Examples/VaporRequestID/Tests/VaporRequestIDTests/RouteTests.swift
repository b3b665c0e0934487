import Testing
import VaporRequestID
import VaporTesting

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("The Vapor request-id server, in memory")
struct RouteTests {
    static func withServer(capture: LogCapture, _ test: (Application) async throws -> Void) async throws {
        try await withApp(configure: { $0.configureRequestID(makeLogHandler: capture.makeLogHandler) }, test)
    }

    @Test("echoes the client's X-Request-ID on the response and in the greeting, and logs it on each line")
    func echoesClientID() async throws {
        let capture = LogCapture()
        try await Self.withServer(capture: capture) { app in
            try await app.testing().test(.GET, "hello/ann", headers: ["X-Request-ID": "client-42"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers.first(name: "X-Request-ID") == "client-42")
                #expect(response.body.string == "Hello, ann. Your request id is client-42.")
            }
        }
        let lines = capture.entries.filter { $0.requestID == "client-42" }
        // Vapor's route line, the handler's line, the `async let` child's line, and one line from
        // each of the two task-group children.
        #expect(lines.map(\.message).sorted() == [
            "GET /hello/ann", "calling service", "calling service", "composing greeting", "greeting requested",
        ])
        #expect(lines.filter { $0.metadata["user"] == "ann" }.count == 4)
    }

    @Test("generates a new UUID for a request without an id, and for one with a malformed id")
    func generatesIDs() async throws {
        let capture = LogCapture()
        try await Self.withServer(capture: capture) { app in
            var ids: Set<String> = []
            for sent in [nil, "", "two words", String(repeating: "x", count: 129), "bell\u{7}"] {
                let headers: HTTPHeaders = sent.map { ["X-Request-ID": $0] } ?? [:]
                let response = try await app.testing().sendRequest(.GET, "hello/bob", headers: headers)
                let id = try #require(response.headers.first(name: "X-Request-ID"))
                #expect(UUID(uuidString: id) != nil)
                #expect(response.body.string == "Hello, bob. Your request id is \(id).")
                ids.insert(id)
            }
            #expect(ids.count == 5)
        }
        #expect(capture.entries.filter { $0.message.hasPrefix("X-Request-ID dropped") }.count == 4)
    }

    @Test("a streamed body, written after the handler returned, reads the request's id in each line")
    func streamsWithTheID() async throws {
        let capture = LogCapture()
        try await Self.withServer(capture: capture) { app in
            let response = try await app.testing().sendRequest(.GET, "stream/fay", headers: ["X-Request-ID": "s-1"])
            #expect(response.headers.first(name: "X-Request-ID") == "s-1")
            #expect(response.body.string == "part 1 for fay request s-1\npart 2 for fay request s-1\npart 3 for fay request s-1\n")
        }
        let lines = capture.entries.filter { $0.requestID == "s-1" }
        #expect(lines.map(\.message) == ["GET /stream/fay", "streaming", "part written", "part written", "part written"])
        #expect(lines.dropFirst().allSatisfy { $0.metadata["user"] == "fay" })
    }

    @Test("sets X-Request-ID on error responses too")
    func tagsErrorResponses() async throws {
        try await Self.withServer(capture: LogCapture()) { app in
            let response = try await app.testing().sendRequest(.GET, "nowhere", headers: ["X-Request-ID": "lost-1"])
            #expect(response.status == .notFound)
            #expect(response.headers.first(name: "X-Request-ID") == "lost-1")
        }
    }
}

extension ByteBuffer {
    /// The buffer's readable bytes as UTF-8 text.
    var string: String { String(decoding: readableBytesView, as: UTF8.self) }
}
