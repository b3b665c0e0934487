import AsyncHTTPClient
import BaggageService
import Hummingbird
import Logging
import LocalsTracing
import NIOCore
import ServiceLifecycle
import Tracing

/// Runs `count` baggage services on loopback ports, each calling the next, in this process.
///
/// Each service has its own log capture and its own HTTP client, with `LocalsBaggageTracer` as
/// its tracer: nothing is bootstrapped process-wide (unless the caller did), and the services
/// share nothing but the `currentRequest` Local, whose values must still never cross from one
/// request to another.
enum ServiceChain {
    struct DidNotStart: Error {}

    /// Starts the chain (the last service first, so each knows the next one's port), runs `body`
    /// with the first service's port and the services' log captures, then stops everything: when
    /// it returns, every server has finished its requests and every client is shut down.
    ///
    /// - Parameters:
    ///   - tracer: What each service's client injects through (and starts its spans with): by
    ///     default a `LocalsBaggageTracer` that records no spans.
    ///   - tracing: Whether each service starts a server span for each request
    ///     (`buildApplication(tracing:)`).
    static func run<R: Sendable>(
        _ count: Int,
        tracer: any Tracer = LocalsBaggageTracer(requestBaggage),
        tracing: Bool = false,
        _ body: (_ firstPort: Int, _ logs: [LogCapture]) async throws -> R
    ) async throws -> R {
        let logs = (0 ..< count).map { _ in LogCapture() }
        let clients = (0 ..< count - 1).map { _ in makeNextServiceClient(tracer: tracer) }
        var groups: [ServiceGroup] = []
        func stopAll() async {
            for group in groups { await group.triggerGracefulShutdown() }
        }
        let quiet = Logger(label: "test") { _ in SwiftLogNoOpLogHandler() }

        let result: Result<R, any Error> = await withThrowingTaskGroup(of: Void.self) { tasks in
            var next: String?
            var firstPort = 0
            for index in (0 ..< count).reversed() {
                let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
                let app = buildApplication(
                    service: "service-\(index + 1)",
                    configuration: ApplicationConfiguration(
                        address: .hostname("127.0.0.1", port: 0),
                        serverName: "service-\(index + 1)"
                    ),
                    next: next,
                    client: index < count - 1 ? clients[index] : nil,
                    makeLogHandler: logs[index].makeLogHandler,
                    tracing: tracing,
                    onServerRunning: { channel in
                        portSink.yield(channel.localAddress?.port ?? 0)
                        portSink.finish()
                    }
                )
                let group = ServiceGroup(
                    configuration: ServiceGroupConfiguration(
                        services: [app],
                        gracefulShutdownSignals: [],
                        logger: quiet
                    )
                )
                groups.append(group)
                tasks.addTask {
                    defer { portSink.finish() }  // never leave the chain waiting for a port
                    try await group.run()
                }
                var portIterator = ports.makeAsyncIterator()
                guard let port = await portIterator.next(), port > 0 else {
                    await stopAll()
                    return .failure(DidNotStart())
                }
                next = "http://127.0.0.1:\(port)"
                firstPort = port
            }
            let result: Result<R, any Error>
            do {
                result = .success(try await body(firstPort, logs))
            } catch {
                result = .failure(error)
            }
            await stopAll()
            do {
                try await tasks.waitForAll()
            } catch {
                return .failure(error)
            }
            return result
        }
        for client in clients {
            try await client.shutdown()
        }
        return try result.get()
    }
}
