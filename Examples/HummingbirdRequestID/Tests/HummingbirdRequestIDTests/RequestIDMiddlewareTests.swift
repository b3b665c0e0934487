import HTTPTypes
import Hummingbird
import HummingbirdRequestID
import HummingbirdTesting
import Logging
import NIOCore
import Testing

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

@Suite("RequestIDMiddleware, through Hummingbird's router test framework")
struct RequestIDMiddlewareTests {
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
        "replaces an X-Request-ID that could break a log line",
        arguments: ["", "two words", "a=b", "quote\"", String(repeating: "x", count: 129), "é"]
    )
    func replacesUnacceptableID(_ sent: String) async throws {
        let app = buildApplication(makeLogHandler: LogCapture().makeLogHandler)
        try await app.test(.router) { client in
            try await client.execute(uri: "/hello/cy", method: .get, headers: [.xRequestID: sent]) { response in
                let id = try #require(response.headers[.xRequestID])
                #expect(id != sent)
                #expect(UUID(uuidString: id) != nil)
            }
        }
    }

    @Test(
        "accepts ids made of letters, digits and - _ . :",
        arguments: ["a", "A-z_0.9:x", String(repeating: "7", count: 128)]
    )
    func acceptsPlainIDs(_ id: String) {
        #expect(RequestIDMiddleware<BasicRequestContext>.isAcceptable(id))
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
