#if NIO
import Locals
import LocalsNIO
import NIOCore
import NIOPosix
import Testing

struct RequestState: Sendable {
    var requestID = "-"
}

let request = Local { RequestState() }

enum Trace {
    @TaskLocal static var id: String? = nil
}

/// Runs `body` with a fresh one-thread event loop group and thread pool, shut down afterwards.
func withLoop<R: Sendable>(
    _ body: (any EventLoop, NIOThreadPool) async throws -> R
) async throws -> R {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let pool = NIOThreadPool(numberOfThreads: 1)
    pool.start()
    do {
        let result = try await body(group.next(), pool)
        try await pool.shutdownGracefully()
        try await group.shutdownGracefully()
        return result
    } catch {
        try await pool.shutdownGracefully()
        try await group.shutdownGracefully()
        throw error
    }
}

@Suite("LocalsNIO: event loop and thread pool work sees the caller's Locals")
struct LocalsNIOTests {
    @Test("execute, submit, flatSubmit and scheduleTask: the WithLocals forms see the request's value; the plain ones do not")
    func eventLoop() async throws {
        let seen = try await withLoop { loop, _ in
            try await request.withValue(\.requestID, "r-1") { () async throws -> [String] in
                let executed = loop.makePromise(of: String.self)
                loop.executeWithLocals { executed.succeed(request.requestID) }
                let plainExecuted = loop.makePromise(of: String.self)
                loop.execute { plainExecuted.succeed(request.requestID) }
                return [
                    try await executed.futureResult.get(),
                    try await loop.submitWithLocals { request.requestID }.get(),
                    try await loop.flatSubmitWithLocals { loop.makeSucceededFuture(request.requestID) }.get(),
                    try await loop.scheduleTaskWithLocals(in: .milliseconds(1)) { request.requestID }.futureResult.get(),
                    try await loop.scheduleTaskWithLocals(deadline: .now()) { request.requestID }.futureResult.get(),
                    try await plainExecuted.futureResult.get(),
                    try await loop.submit { request.requestID }.get(),
                    try await loop.scheduleTask(in: .milliseconds(1)) { request.requestID }.futureResult.get(),
                ]
            }
        }
        #expect(seen == ["r-1", "r-1", "r-1", "r-1", "r-1", "-", "-", "-"])
    }

    @Test("work on the loop writes its own copy: the loop's thread keeps nothing of it")
    func writesStayInTheWork() async throws {
        let seen = try await withLoop { loop, _ in
            try await request.withValue(\.requestID, "r-2") { () async throws -> [String] in
                let inside = try await loop.submitWithLocals { () -> String in
                    request.requestID = "changed inside"
                    return request.requestID
                }.get()
                let after = try await loop.submit { request.requestID }.get()
                return [inside, after, request.requestID]
            }
        }
        #expect(seen == ["changed inside", "-", "r-2"])
    }

    @Test("future callbacks: the WithLocals forms see the values where they were attached")
    func futureCallbacks() async throws {
        let seen = try await withLoop { loop, _ in
            try await request.withValue(\.requestID, "r-3") { () async throws -> [String] in
                let promise = loop.makePromise(of: Int.self)
                let mapped = promise.futureResult.mapWithLocals { "\(request.requestID) \($0)" }
                let flatMapped = promise.futureResult.flatMapWithLocals { loop.makeSucceededFuture("\(request.requestID) \($0)") }
                let completed = loop.makePromise(of: String.self)
                promise.futureResult.whenCompleteWithLocals { _ in completed.succeed(request.requestID) }
                let plain = promise.futureResult.map { "\(request.requestID) \($0)" }
                promise.succeed(1)
                return [
                    try await mapped.get(), try await flatMapped.get(), try await completed.futureResult.get(),
                    try await plain.get(),
                ]
            }
        }
        #expect(seen == ["r-3 1", "r-3 1", "r-3", "- 1"])
    }

    @Test("the thread pool: the WithLocals forms see the request's value; the plain ones do not")
    func threadPool() async throws {
        let seen = try await withLoop { loop, pool in
            try await request.withValue(\.requestID, "r-4") { () async throws -> [String] in
                let submitted = loop.makePromise(of: String.self)
                pool.submitWithLocals { _ in submitted.succeed(request.requestID) }
                return [
                    try await pool.runIfActiveWithLocals(eventLoop: loop) { request.requestID }.get(),
                    try await pool.runIfActiveWithLocals { request.requestID },
                    try await submitted.futureResult.get(),
                    try await pool.runIfActive { request.requestID },
                ]
            }
        }
        #expect(seen == ["r-4", "r-4", "r-4", "-"])
    }

    @Test("a carried task-local reaches event loop work too")
    func carriedTaskLocal() async throws {
        LocalsSnapshot.carry(Trace.$id)
        let seen = try await withLoop { loop, _ in
            try await Trace.$id.withValue("t-1") { () async throws -> [String?] in
                [try await loop.submitWithLocals { Trace.id }.get(), try await loop.submit { Trace.id }.get()]
            }
        }
        #expect(seen == ["t-1", nil])
    }
}
#endif
