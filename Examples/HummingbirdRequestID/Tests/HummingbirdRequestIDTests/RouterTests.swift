import HTTPTypes
import Hummingbird
import HummingbirdRequestID
import HummingbirdTesting
import LocalsHummingbird
import Logging
import NIOCore
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("The request-id server, through Hummingbird's router test framework")
struct RouterTests {
    @Test("echoes the client's X-Request-ID on the response and in the greeting")
    func echoesClientID() async throws {
        let app = buildApplication(makeLogHandler: LogCapture().makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/hello/ann", method: .get, headers: [.xRequestID: "client-42"]) { response in
                #expect(response.status == .ok)
                #expect(response.headers[.xRequestID] == "client-42")
                #expect(String(buffer: response.body) == "Hello, ann. Your request id is client-42.")
            }
        }
    }

    @Test("generates a new UUID for each request that has no X-Request-ID")
    func generatesIDs() async throws {
        let app = buildApplication(makeLogHandler: LogCapture().makeLogHandler)
        try await app.test(.router) { client in
            var ids: Set<String> = []
            for _ in 0..<20 {
                try await client.execute(uri: "/hello/bob", method: .get) { response in
                    let id = try #require(response.headers[.xRequestID])
                    #expect(UUID(uuidString: id) != nil)
                    #expect(String(buffer: response.body) == "Hello, bob. Your request id is \(id).")
                    ids.insert(id)
                }
            }
            #expect(ids.count == 20)
        }
    }

    @Test(
        "replaces a malformed X-Request-ID with a new UUID",
        arguments: ["", "two words", "tab\tid", "bell\u{7}ring", String(repeating: "x", count: 129), "\u{E9}"]
    )
    func replacesMalformedID(_ sent: String) async throws {
        let capture = LogCapture()
        let app = buildApplication(makeLogHandler: capture.makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/hello/cy", method: .get, headers: [.xRequestID: sent]) { response in
                let id = try #require(response.headers[.xRequestID])
                #expect(id != sent)
                #expect(UUID(uuidString: id) != nil)
                #expect(String(buffer: response.body) == "Hello, cy. Your request id is \(id).")
            }
        }
        // The middleware says why, on a line that carries the new id.
        let notices = capture.entries.filter { $0.message.hasPrefix("X-Request-ID dropped") }
        #expect(notices.count == 1)
        #expect(notices.first?.metadata["reason"] != nil)
    }

    @Test(
        "uses any X-Request-ID of 1 to 128 visible ASCII characters as it is",
        arguments: ["a", "A-z_0.9:x", "a=b", "quote\"", String(repeating: "7", count: 128)]
    )
    func acceptsVisibleASCII(_ id: String) async throws {
        let app = buildApplication(makeLogHandler: LogCapture().makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/hello/di", method: .get, headers: [.xRequestID: id]) { response in
                #expect(response.headers[.xRequestID] == id)
            }
        }
    }

    @Test("a streamed body, written after the handler returned, reads the request's id in each line")
    func streamsWithTheID() async throws {
        let capture = LogCapture()
        let app = buildApplication(makeLogHandler: capture.makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/stream/fay", method: .get, headers: [.xRequestID: "s-1"]) { response in
                #expect(response.headers[.xRequestID] == "s-1")
                #expect(String(buffer: response.body) == "part 1 for fay request s-1\npart 2 for fay request s-1\npart 3 for fay request s-1\n")
            }
        }
        let lines = capture.entries.filter { $0.requestID == "s-1" }
        #expect(lines.map(\.message) == ["Request", "streaming", "part written", "part written", "part written"])
        #expect(lines.dropFirst().allSatisfy { $0.metadata["user"] == "fay" })
    }

    @Test("sets X-Request-ID on error responses too")
    func tagsErrorResponses() async throws {
        let app = buildApplication(makeLogHandler: LogCapture().makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/nowhere", method: .get, headers: [.xRequestID: "lost-1"]) { response in
                #expect(response.status == .notFound)
                #expect(response.headers[.xRequestID] == "lost-1")
            }
        }
    }

    @Test("every line logged for a request, from its task and its child tasks, carries its id")
    func logsCarryTheID() async throws {
        let capture = LogCapture()
        let app = buildApplication(makeLogHandler: capture.makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/hello/dee", method: .get, headers: [.xRequestID: "log-7"]) { _ in }
            try await client.execute(uri: "/hello/eve", method: .get, headers: [.xRequestID: "log-8"]) { _ in }
        }
        let entries = capture.entries
        for (id, name) in [("log-7", "dee"), ("log-8", "eve")] {
            let lines = entries.filter { $0.requestID == id }
            // Hummingbird's "Request" line, the handler's line, the `async let` child's line,
            // and one line from each of the two task-group children.
            #expect(lines.map(\.message).sorted() == [
                "Request", "calling service", "calling service", "composing greeting", "greeting requested",
            ])
            #expect(lines.first { $0.message == "Request" }?.metadata["hb.request.path"] == "/hello/\(name)")
            // The handler set `user` inside the scope before creating its children: every line
            // after that carries it, the children's included.
            #expect(lines.filter { $0.metadata["user"] == name }.count == 4)
        }
        #expect(entries.count == 10, "\(entries)")
    }
}
