#if Vapor
import Locals
import LocalsTestSupport
import LocalsVapor
import Logging
import Testing
import Vapor
import VaporTesting

@Suite("RequestScopeMiddleware (Vapor)")
struct RequestScopeMiddlewareTests {
    /// The routes of the tests, behind the middleware, which comes first.
    static func configure(_ app: Application, logger: Logger) {
        app.logger = logger
        app.middleware = Middlewares()
        app.middleware.use(RequestScopeMiddleware(id: \.id, of: request, scoping: audit, logging: fields))
        app.middleware.use(ErrorMiddleware.default(environment: app.environment))
        app.get("hello", ":name") { req async throws -> String in
            let name = try req.parameters.require("name")
            request.user = name
            req.logger.info("hello")
            return "\(name) \(request.id)"
        }
        // A body the stream writes after the handler returned, reading the Local as it writes.
        app.get("later", ":name") { req async throws -> Response in
            request.user = try req.parameters.require("name")
            return Response(
                status: .ok,
                body: .init(asyncStream: { writer in
                    try await writer.write(.buffer(ByteBuffer(string: "\(request.user ?? "-") \(request.id)")))
                    try await writer.write(.end)
                })
            )
        }
        app.get("stream", ":name") { req async throws -> Response in
            let name = try req.parameters.require("name")
            return Response(
                status: .ok,
                body: .init(managedAsyncStream: { writer in
                    for part in 1...3 {
                        await Task.yield()
                        try await writer.write(.buffer(ByteBuffer(string: "part \(part) for \(name) request \(request.id)\n")))
                    }
                })
            )
        }
        // A callback-based stream: its synchronous part reads the request's values.
        app.get("callback", ":name") { req async throws -> Response in
            request.user = try req.parameters.require("name")
            return Response(
                status: .ok,
                body: .init(stream: { writer in
                    writer.write(.buffer(ByteBuffer(string: "\(request.user ?? "-") \(request.id)")), promise: nil)
                    writer.write(.end, promise: nil)
                })
            )
        }
        app.get("children", ":name") { req async throws -> String in
            let name = try req.parameters.require("name")
            request.user = name  // plain writes, in the handler
            audit.value = ["by \(name)"]
            async let fromAsyncLet = "\(request.user ?? "-") \(audit.value)"
            let fromTask = await Task { "\(request.user ?? "-") \(audit.value)" }.value
            let fromGroup = await withTaskGroup(of: String.self) { group in
                group.addTask { "\(request.user ?? "-") \(audit.value)" }
                return await group.next() ?? "none"
            }
            return [await fromAsyncLet, fromTask, fromGroup].joined(separator: "|")
        }
        app.get("fresh") { _ async -> String in
            "\(request.user ?? "nil") \(audit.value)"
        }
    }

    /// Runs `test` against an application with the tests' routes, logging to `capture`.
    static func withRoutes(
        capture: LogCapture = LogCapture(),
        _ test: (Application) async throws -> Void
    ) async throws {
        try await withApp(configure: { configure($0, logger: capture.logger()) }, test)
    }

    @Test("echoes the client's id, in the header, to the handler and on its log lines")
    func echoesTheClientID() async throws {
        let capture = LogCapture()
        try await Self.withRoutes(capture: capture) { app in
            try await app.testing().test(.GET, "hello/ann", headers: ["X-Request-ID": "abc-123"]) { response in
                #expect(response.headers.first(name: "X-Request-ID") == "abc-123")
                #expect(response.body.string == "ann abc-123")
            }
        }
        let hello = capture.all.filter { $0.hasSuffix("hello\n") }
        #expect(hello.count == 1)
        #expect(hello.allSatisfy { $0.contains("request-id=abc-123") && $0.contains("user=ann") })
    }

    @Test("generates a distinct id when the request has none")
    func generatesMissingIDs() async throws {
        try await Self.withRoutes { app in
            var ids: Set<String> = []
            for _ in 0..<5 {
                let response = try await app.testing().sendRequest(.GET, "hello/bo")
                let id = try #require(response.headers.first(name: "X-Request-ID"))
                #expect(isGeneratedID(id))
                #expect(response.body.string == "bo \(id)")
                ids.insert(id)
            }
            #expect(ids.count == 5)
        }
    }

    @Test(
        "replaces a malformed id with a new one, and logs why",
        arguments: [
            String(repeating: "a", count: 129), "bad\u{1}id", "tab\there", "with space", "", "caf\u{E9}", "del\u{7F}",
            "line\r\nbreak",
        ]
    )
    func replacesMalformedIDs(incoming: String) async throws {
        let capture = LogCapture()
        try await Self.withRoutes(capture: capture) { app in
            let response = try await app.testing().sendRequest(.GET, "hello/cy", headers: ["X-Request-ID": incoming])
            let id = try #require(response.headers.first(name: "X-Request-ID"))
            #expect(isGeneratedID(id))
            #expect(response.body.string == "cy \(id)")
            let notices = capture.all.filter { $0.contains("X-Request-ID dropped") }
            #expect(notices.count == 1)
            #expect(notices.allSatisfy { $0.contains("request-id=\(id)") && $0.contains("reason=") })
            // Vapor's own request-id metadata, which copies the header unchecked, is replaced too.
            #expect(capture.all.filter { $0.contains(incoming) && !incoming.isEmpty }.isEmpty)
        }
    }

    @Test("a body streamed after the handler returned reads the id and the handler's writes")
    func bodyWrittenLater() async throws {
        try await Self.withRoutes { app in
            let later = try await app.testing().sendRequest(.GET, "later/eve", headers: ["X-Request-ID": "later-1"])
            #expect(later.body.string == "eve later-1")
            let callback = try await app.testing().sendRequest(.GET, "callback/ed", headers: ["X-Request-ID": "cb-1"])
            #expect(callback.body.string == "ed cb-1")
            #expect(callback.headers.first(name: "X-Request-ID") == "cb-1")
        }
    }

    @Test(
        "each chunk of a streamed body reads the request's id, over a real connection on 127.0.0.1",
        .timeLimit(.minutes(1))
    )
    func streamedBody() async throws {
        try await Self.withRoutes { app in
            let tester = try app.testing(method: .running(hostname: "127.0.0.1", port: 0))
            for sent in ["stream-1", nil, "stream-3"] {
                let headers: HTTPHeaders = sent.map { ["X-Request-ID": $0] } ?? [:]
                let response = try await tester.sendRequest(.GET, "stream/fay", headers: headers)
                let id = try #require(response.headers.first(name: "X-Request-ID"))
                #expect(id == sent ?? id)
                let expected = (1...3).map { "part \($0) for fay request \(id)\n" }.joined()
                #expect(response.body.string == expected)
            }
        }
    }

    @Test("child tasks made in the handler see its plain writes to the scoped Locals")
    func childTasksSeeHandlerWrites() async throws {
        try await Self.withRoutes { app in
            let response = try await app.testing().sendRequest(.GET, "children/gus")
            let seen = response.body.string.split(separator: "|").map(String.init)
            #expect(seen == Array(repeating: "gus [\"by gus\"]", count: 3))
        }
    }

    @Test("values do not leak between requests, one after another or 200 at once", .timeLimit(.minutes(1)))
    func noLeaks() async throws {
        try await Self.withRoutes { app in
            let tester = try app.testing()
            _ = try await tester.sendRequest(.GET, "children/hal", headers: ["X-Request-ID": "leak-1"])
            let after = try await tester.sendRequest(.GET, "fresh")
            #expect(after.body.string == "nil []")
            try await withThrowingTaskGroup(of: (String, String, String?).self) { group in
                for index in 0..<200 {
                    group.addTask {
                        let sent = "many-\(index)"
                        let response = try await tester.sendRequest(
                            .GET, "later/u\(index)", headers: ["X-Request-ID": sent])
                        return (sent, response.body.string, response.headers.first(name: "X-Request-ID"))
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

    @Test("with each Local's own policy (inheritance: nil), the handler's plain writes stay in its own task")
    func ownPolicyKeepsHandlerWritesInItsTask() async throws {
        try await withApp(configure: { app in
            app.logger = LogCapture().logger()
            app.middleware = Middlewares()
            app.middleware.use(RequestScopeMiddleware(id: \.id, of: request, inheritance: nil))
            app.get("own", ":name") { req async throws -> String in
                request.user = try req.parameters.require("name")
                async let child = "\(request.id) \(request.user ?? "-")"
                return "\(request.id) \(request.user ?? "-")|\(await child)"
            }
        }) { app in
            let response = try await app.testing().sendRequest(.GET, "own/ivy", headers: ["X-Request-ID": "own-1"])
            // The id comes from the scope; the user, written by the handler (a child task of the
            // scope under .copy), is its own.
            #expect(response.body.string == "own-1 ivy|own-1 -")
        }
    }

    @Test("an error response made by a middleware after it carries the id")
    func errorResponseCarriesTheID() async throws {
        try await Self.withRoutes { app in
            let response = try await app.testing().sendRequest(.GET, "nowhere", headers: ["X-Request-ID": "lost-1"])
            #expect(response.status == .notFound)
            #expect(response.headers.first(name: "X-Request-ID") == "lost-1")
        }
    }
}

extension ByteBuffer {
    /// The buffer's readable bytes as UTF-8 text.
    fileprivate var string: String { String(decoding: readableBytesView, as: UTF8.self) }
}
#endif
