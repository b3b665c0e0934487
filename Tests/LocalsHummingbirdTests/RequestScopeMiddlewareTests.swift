#if Hummingbird
import HTTPTypes
import Hummingbird
import HummingbirdTesting
import Locals
import LocalsTestSupport
import LocalsHummingbird
import Logging
import NIOCore
import Testing

@Suite("RequestScopeMiddleware (Hummingbird)")
struct RequestScopeMiddlewareTests {
    /// The tests' application, for Hummingbird's router test framework.
    static func makeApplication(logger: Logger) -> some ApplicationProtocol {
        Application(router: makeRouter(), logger: logger)
    }

    /// The routes of the tests, behind the middleware.
    static func makeRouter() -> Router<BasicRequestContext> {
        let router = Router()
        router.add(middleware: RequestScopeMiddleware(id: \.id, of: request, scoping: audit, logging: fields))
        router.get("hello/:name") { _, context -> String in
            let name = try context.parameters.require("name")
            request.user = name
            context.logger.info("hello")
            return "\(name) \(request.id)"
        }
        // A body the writer produces after the handler returned, reading the Local as it writes.
        router.get("later/:name") { _, context -> Response in
            request.user = try context.parameters.require("name")
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    try await writer.write(ByteBuffer(string: "\(request.user ?? "-") \(request.id)"))
                    try await writer.finish(nil)
                }
            )
        }
        router.get("stream/:name") { _, context -> Response in
            let name = try context.parameters.require("name")
            return Response(
                status: .ok,
                body: ResponseBody { writer in
                    for part in 1...3 {
                        await Task.yield()
                        try await writer.write(ByteBuffer(string: "part \(part) for \(name) request \(request.id)\n"))
                    }
                    try await writer.finish(nil)
                }
            )
        }
        router.get("children/:name") { _, context -> String in
            let name = try context.parameters.require("name")
            request.user = name  // plain writes, in the handler
            audit.value = ["by \(name)"]
            unscoped.value = "written by \(name)"
            async let fromAsyncLet = "\(request.user ?? "-") \(audit.value) \(unscoped.value)"
            let fromTask = await Task { "\(request.user ?? "-") \(audit.value) \(unscoped.value)" }.value
            let fromGroup = await withTaskGroup(of: String.self) { group in
                group.addTask { "\(request.user ?? "-") \(audit.value) \(unscoped.value)" }
                return await group.next() ?? "none"
            }
            return [await fromAsyncLet, fromTask, fromGroup].joined(separator: "|")
        }
        // What a request sees before it writes anything.
        router.get("fresh") { _, _ -> String in
            "\(request.user ?? "nil") \(audit.value)"
        }
        return router
    }

    @Test("echoes the client's id, in the header and to the handler")
    func echoesTheClientID() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/hello/ann", method: .get, headers: [.xRequestID: "abc-123"])
            #expect(response.headers[.xRequestID] == "abc-123")
            #expect(String(buffer: response.body) == "ann abc-123")
        }
    }

    @Test("generates a distinct id when the request has none")
    func generatesMissingIDs() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            var ids: Set<String> = []
            for _ in 0..<5 {
                let response = try await client.execute(uri: "/hello/bo", method: .get)
                let id = try #require(response.headers[.xRequestID])
                #expect(isGeneratedID(id))
                #expect(String(buffer: response.body) == "bo \(id)")
                ids.insert(id)
            }
            #expect(ids.count == 5)
        }
    }

    @Test(
        "replaces a malformed id with a new one, and logs why",
        arguments: [String(repeating: "a", count: 129), "bad\u{1}id", "tab\there", "with space", "", "caf\u{E9}"]
    )
    func replacesMalformedIDs(incoming: String) async throws {
        let capture = LogCapture()
        let app = Self.makeApplication(logger: capture.logger())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/hello/cy", method: .get, headers: [.xRequestID: incoming])
            let id = try #require(response.headers[.xRequestID])
            #expect(isGeneratedID(id))
            #expect(String(buffer: response.body) == "cy \(id)")
            let notices = capture.all.filter { $0.contains("X-Request-ID dropped") }
            #expect(notices.count == 1)
            #expect(notices.allSatisfy { $0.contains("request-id=\(id)") && $0.contains("reason=") })
        }
    }

    @Test("accepts an id of exactly 128 visible ASCII bytes")
    func acceptsTheLongestID() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        let longest = String(repeating: "x", count: 127) + "~"
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/hello/di", method: .get, headers: [.xRequestID: longest])
            #expect(response.headers[.xRequestID] == longest)
        }
    }

    @Test("a body written after the handler returned reads the id and the handler's writes")
    func bodyWrittenLater() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/later/eve", method: .get, headers: [.xRequestID: "later-1"])
            #expect(String(buffer: response.body) == "eve later-1")
            #expect(response.headers[.xRequestID] == "later-1")
        }
    }

    @Test(
        "each chunk of a streamed body reads the request's id, over a real connection to 127.0.0.1",
        .timeLimit(.minutes(1))
    )
    func streamedBody() async throws {
        try await withLoopbackServer(Self.makeRouter(), logger: LogCapture().logger()) { client in
            for sent in ["stream-1", nil, "stream-3"] {
                let headers: HTTPFields = sent.map { [.xRequestID: $0] } ?? [:]
                let response = try await client.get("/stream/fay", headers: headers)
                let id = try #require(response.headers[.xRequestID])
                #expect(id == sent ?? id)
                let expected = (1...3).map { "part \($0) for fay request \(id)\n" }.joined()
                #expect(response.body.map { String(buffer: $0) } == expected)
            }
        }
    }

    @Test("child tasks made in the handler see its plain writes to the scoped Locals, and only those")
    func childTasksSeeHandlerWrites() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/children/gus", method: .get)
            let seen = String(buffer: response.body).split(separator: "|").map(String.init)
            // `unscoped` has no scope: the handler's write stays in its own task.
            #expect(seen == Array(repeating: "gus [\"by gus\"] initial", count: 3))
        }
    }

    @Test("values do not leak between requests, one after another or 200 at once", .timeLimit(.minutes(1)))
    func noLeaks() async throws {
        try await withLoopbackServer(Self.makeRouter(), logger: LogCapture().logger()) { client in
            // One keep-alive connection: the requests run one after another in one task.
            _ = try await client.get("/children/hal", headers: [.xRequestID: "leak-1"])
            let after = try await client.get("/fresh")
            #expect(after.body.map { String(buffer: $0) } == "nil []")
        }
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            try await withThrowingTaskGroup(of: (String, String, String?).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let sent = "many-\(index)"
                        let response = try await client.execute(
                            uri: "/later/u\(index)", method: .get, headers: [.xRequestID: sent])
                        return (sent, String(buffer: response.body), response.headers[.xRequestID])
                    }
                }
                var checked = 0
                for try await (sent, body, echoed) in group {
                    #expect(body == "u\(sent.dropFirst("many-".count)) \(sent)")
                    #expect(echoed == sent)
                    checked += 1
                }
                #expect(checked == 200)
            }
        }
    }

    @Test("an error response made from an HTTPResponseError carries the id")
    func errorResponseCarriesTheID() async throws {
        let app = Self.makeApplication(logger: LogCapture().logger())
        try await app.test(.router) { client in
            let response = try await client.execute(uri: "/nowhere", method: .get, headers: [.xRequestID: "lost-1"])
            #expect(response.status == .notFound)
            #expect(response.headers[.xRequestID] == "lost-1")
        }
    }
}
#endif
