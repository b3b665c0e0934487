#if OpenAPI
import HTTPTypes
import Locals
import LocalsTestSupport
import LocalsOpenAPI
import Logging
import OpenAPIRuntime
import Testing

@Suite("RequestScopeMiddleware (OpenAPI)")
struct RequestScopeMiddlewareTests {
    @Test("echoes the client's id, in the header and to the handler")
    func echoesTheClientID() async throws {
        let (response, body) = try await serve(makeMiddleware(), headers: [.requestID: "abc-123"]) { _, _, _ in
            (HTTPResponse(status: .ok), HTTPBody("hello \(request.id)"))
        }
        #expect(response.headerFields[.requestID] == "abc-123")
        #expect(try await text(of: body) == "hello abc-123")
    }

    @Test("generates a distinct id when the request has none")
    func generatesMissingIDs() async throws {
        var ids: Set<String> = []
        for _ in 0..<5 {
            let (response, body) = try await serve(makeMiddleware(), handler: answering { HTTPBody(request.id) })
            let id = try #require(response.headerFields[.requestID])
            #expect(isGeneratedID(id))
            #expect(try await text(of: body) == id)
            ids.insert(id)
        }
        #expect(ids.count == 5)
    }

    @Test(
        "replaces a malformed id with a new one, and logs why",
        arguments: [
            String(repeating: "a", count: 129), "bad\u{1}id", "tab\there", "with space", "", "caf\u{E9}", "a, b",
        ]
    )
    func replacesMalformedIDs(incoming: String) async throws {
        let capture = LogCapture()
        let middleware = makeMiddleware(logger: capture.logger())
        let (response, body) = try await serve(middleware, headers: [.requestID: incoming], handler: answering {
            HTTPBody(request.id)
        })
        let id = try #require(response.headerFields[.requestID])
        #expect(isGeneratedID(id))
        #expect(try await text(of: body) == id)
        let notices = capture.all.filter { $0.contains("X-Request-ID dropped") }
        #expect(notices.count == 1)
        for notice in notices {
            #expect(notice.contains("request-id=\(id)"))
            #expect(notice.contains("reason="))
            #expect(notice.contains("operation=getGreeting"))
            #expect(incoming.count < 3 || !notice.contains(incoming))  // the id itself is not logged
        }
    }

    @Test("two X-Request-ID fields are one malformed id")
    func twoIDFields() async throws {
        var headers = HTTPFields()
        headers.append(HTTPField(name: .requestID, value: "one"))
        headers.append(HTTPField(name: .requestID, value: "two"))
        let middleware = makeMiddleware(logger: LogCapture().logger())
        let (response, _) = try await serve(middleware, headers: headers, handler: answering { nil })
        #expect(response.headerFields[values: .requestID].count == 1)
        #expect(isGeneratedID(try #require(response.headerFields[.requestID])))
    }

    @Test("logs a dropped id through Logger.current when given no logger")
    func logsThroughCurrentLogger() async throws {
        let capture = LogCapture()
        try await withLogger(capture.logger()) { _ in
            _ = try await serve(makeMiddleware(), headers: [.requestID: "with space"], handler: answering { nil })
        }
        #expect(capture.all.filter { $0.contains("X-Request-ID dropped") }.count == 1)
    }

    @Test("accepts an id of exactly 128 visible ASCII bytes")
    func acceptsTheLongestID() async throws {
        let longest = String(repeating: "x", count: 127) + "~"
        let (response, _) = try await serve(makeMiddleware(), headers: [.requestID: longest]) { _, _, _ in
            (HTTPResponse(status: .ok), nil)
        }
        #expect(response.headerFields[.requestID] == longest)
    }

    @Test("a body iterated after the middleware returned, by another task, reads the id and the handler's writes")
    func bodyIteratedLater() async throws {
        let (response, body) = try await serve(makeMiddleware(), headers: [.requestID: "later-1"]) { _, _, _ in
            request.user = "eve"  // plain writes, in the handler
            audit.value = ["by eve"]
            let chunks = LazyChunks(count: 3) { part in
                "part \(part) for \(request.user ?? "-") request \(request.id) \(audit.value)\n"
            }
            return (HTTPResponse(status: .ok), HTTPBody(chunks, length: .unknown, iterationBehavior: .single))
        }
        // The scopes are closed: the caller's task reads its own values again.
        #expect(request.id == "-")
        #expect(audit.value == [])
        #expect(response.headerFields[.requestID] == "later-1")
        let expected = (1...3).map { "part \($0) for eve request later-1 [\"by eve\"]\n" }.joined()
        #expect(try await textFromAnotherTask(body) == expected)
    }

    @Test("the wrapped body keeps its length and iteration behavior, and a missing body stays missing")
    func bodyKeepsLengthAndBehavior() async throws {
        let (_, multiple) = try await serve(makeMiddleware(), headers: [.requestID: "len-1"]) { _, _, _ in
            let chunks = LazyChunks(count: 2) { _ in request.id }
            return (HTTPResponse(status: .ok), HTTPBody(chunks, length: .known(10), iterationBehavior: .multiple))
        }
        let many = try #require(multiple)
        #expect(many.length == .known(10))
        #expect(many.iterationBehavior == .multiple)
        #expect(try await textFromAnotherTask(many) == "len-1len-1")
        #expect(try await textFromAnotherTask(many) == "len-1len-1")

        let (_, single) = try await serve(makeMiddleware(), headers: [.requestID: "len-2"]) { _, _, _ in
            let chunks = LazyChunks(count: 1) { _ in request.id }
            return (HTTPResponse(status: .ok), HTTPBody(chunks, length: .unknown, iterationBehavior: .single))
        }
        let once = try #require(single)
        #expect(once.length == .unknown)
        #expect(once.iterationBehavior == .single)
        #expect(try await textFromAnotherTask(once) == "len-2")
        await #expect(throws: (any Error).self) { try await text(of: once) }

        let (_, none) = try await serve(makeMiddleware(), handler: answering { nil })
        #expect(none == nil)
    }

    @Test("child tasks made in the handler see its plain writes to the scoped Locals, and only those")
    func childTasksSeeHandlerWrites() async throws {
        // A task of its own, so that the write to `unscoped` (which has no scope) stays there.
        let (_, body) = try await Task {
            try await serve(makeMiddleware()) { _, _, _ in
                request.user = "gus"
                audit.value = ["by gus"]
                unscoped.value = "written by gus"
                @Sendable func seen() -> String { "\(request.user ?? "-") \(audit.value) \(unscoped.value)" }
                async let fromAsyncLet = seen()
                let fromTask = await Task { seen() }.value
                let fromGroup = await withTaskGroup(of: String.self) { group in
                    group.addTask { seen() }
                    return await group.next() ?? "none"
                }
                let all = [await fromAsyncLet, fromTask, fromGroup].joined(separator: "|")
                return (HTTPResponse(status: .ok), HTTPBody(all))
            }
        }.value
        let seen = try await text(of: body).split(separator: "|").map(String.init)
        #expect(seen == Array(repeating: "gus [\"by gus\"] initial", count: 3))
    }

    @Test("values do not leak between requests, one after another or 200 at once", .timeLimit(.minutes(1)))
    func noLeaks() async throws {
        let middleware = makeMiddleware()
        _ = try await serve(middleware, headers: [.requestID: "leak-1"]) { _, _, _ in
            request.user = "hal"
            audit.value = ["by hal"]
            return (HTTPResponse(status: .ok), nil)
        }
        let (_, fresh) = try await serve(middleware) { _, _, _ in
            (HTTPResponse(status: .ok), HTTPBody("\(request.user ?? "nil") \(audit.value)"))
        }
        #expect(try await text(of: fresh) == "nil []")

        // 200 at once; every body is iterated only once all the middlewares have returned.
        let answers = try await withThrowingTaskGroup(of: (Int, HTTPResponse, HTTPBody?).self) { group in
            for index in 0..<200 {
                group.addTask {
                    let headers: HTTPFields = [.requestID: "many-\(index)"]
                    let (response, body) = try await serve(middleware, headers: headers) { _, _, _ in
                        request.user = "u\(index)"
                        let chunks = LazyChunks(count: 2) { part in "\(part):\(request.user ?? "-")/\(request.id);" }
                        let body = HTTPBody(chunks, length: .unknown, iterationBehavior: .single)
                        return (HTTPResponse(status: .ok), body)
                    }
                    return (index, response, body)
                }
            }
            return try await group.reduce(into: []) { $0.append($1) }
        }
        #expect(answers.count == 200)
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, response, body) in answers {
                group.addTask {
                    let written = try await text(of: body)
                    #expect(response.headerFields[.requestID] == "many-\(index)")
                    #expect(written == "1:u\(index)/many-\(index);2:u\(index)/many-\(index);")
                }
            }
            try await group.waitForAll()
        }
    }

    @Test("a ServerError from the chain carries the id, and an ErrorHandlingMiddleware before it answers with it")
    func serverErrorCarriesTheID() async throws {
        let failing: Handler = { httpRequest, body, metadata in
            let chunks = LazyChunks(count: 1) { _ in "error for \(request.id)" }
            throw ServerError(
                operationID: "getGreeting",
                request: httpRequest,
                requestBody: body,
                requestMetadata: metadata,
                causeDescription: "the handler failed",
                underlyingError: HandlerFailure(),
                httpStatus: .badRequest,
                httpHeaderFields: [:],
                httpBody: HTTPBody(chunks, length: .unknown, iterationBehavior: .single)
            )
        }
        let thrown = await #expect(throws: ServerError.self) {
            try await serve(makeMiddleware(), headers: [.requestID: "err-1"], handler: failing)
        }
        let error = try #require(thrown)
        #expect(error.httpHeaderFields[.requestID] == "err-1")
        #expect(try await textFromAnotherTask(error.httpBody) == "error for err-1")

        let (response, body) = try await serve(ErrorHandlingMiddleware(), headers: [.requestID: "err-2"]) {
            httpRequest, body, metadata in
            try await makeMiddleware().intercept(
                httpRequest, body: body, metadata: metadata, operationID: "getGreeting", next: failing
            )
        }
        #expect(response.status == .badRequest)
        #expect(response.headerFields[.requestID] == "err-2")
        #expect(try await textFromAnotherTask(body) == "error for err-2")
    }

    @Test("another error is rethrown as it is, with the scopes closed")
    func otherErrorsRethrown() async throws {
        await #expect(throws: HandlerFailure.self) {
            try await serve(makeMiddleware(), headers: [.requestID: "err-3"]) { _, _, _ in
                request.user = "ivy"
                throw HandlerFailure()
            }
        }
        #expect(request.id == "-")
        #expect(request.user == nil)
    }
}

struct HandlerFailure: Error {}
#endif
