#if Hummingbird
import Hummingbird
import HummingbirdTesting
import Locals
import LocalsTestSupport
import LocalsLogging
import Logging
import NIOCore
import Synchronization

/// What the tests' server knows about the request a task is handling.
struct RequestState: Sendable {
    var id = "-"
    var user: String?
}

/// The request-id Local of the tests.
let request = Local { RequestState() }

/// Another Local that gets a scope per request: a handler's plain writes to it reach its children.
let audit = Local { [String]() }

/// A Local that gets no scope: a handler's plain writes to it stay in the handler's task.
let unscoped = Local { "initial" }

let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]

extension LogCapture {
    /// A capture whose loggers put this module's `fields` on every line.
    convenience init() {
        self.init(fields: fields)
    }
}

/// Runs the router's application on 127.0.0.1 with a free port, and `body` with a client holding
/// one keep-alive connection to it; then stops the server.
func withLoopbackServer<Result: Sendable>(
    _ router: Router<BasicRequestContext>,
    logger: Logger,
    _ body: @escaping @Sendable (TestClient) async throws -> Result
) async throws -> Result {
    let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
    let app = Application(
        router: router,
        configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
        onServerRunning: { channel in
            portSink.yield(channel.localAddress?.port ?? 0)
            portSink.finish()
        },
        logger: logger
    )
    return try await withThrowingTaskGroup(of: Result?.self) { group in
        group.addTask {
            defer { portSink.finish() }  // never leave the test waiting for a port
            try await app.run()
            return nil
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next(), port > 0 else {
            group.cancelAll()
            throw ServerDidNotStart()
        }
        let result = try await TestClient.withClient(host: "127.0.0.1", port: port, operation: body)
        group.cancelAll()  // the server shuts down when its task is cancelled
        return result
    }
}

struct ServerDidNotStart: Error {}

#endif
