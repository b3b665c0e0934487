import BaggageService
import Foundation
import Hummingbird
import LocalsTracing
import Tracing

/// `baggage-service --port N [--next URL] [--name NAME]`: serves `GET /hello/{name}` on
/// 127.0.0.1; with `--next`, calls `URL/hello/{name}` first and includes its answer. Logs every
/// line to standard output with the tenant and request id read from Locals. Stops on SIGINT or
/// SIGTERM.
@main
struct BaggageServiceMain {
    static let usage = """
        usage: baggage-service --port N [--next URL] [--name NAME]
          --port N     port on 127.0.0.1 (0 to 65535; 0 picks a free one)
          --next URL   service to call first, e.g. http://127.0.0.1:8082
          --name NAME  name in answers and log lines (default: baggage-service)
        """

    struct Options {
        var port = 8080
        var next: String?
        var name = "baggage-service"
    }

    static func main() async throws {
        guard let options = options(from: Array(CommandLine.arguments.dropFirst())) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        // Baggage without tracing: a tracer that records nothing and propagates the fields. HTTP
        // clients made after this line inject through it.
        InstrumentationSystem.bootstrap(LocalsBaggageTracer(requestBaggage))

        let client = options.next.map { _ in makeNextServiceClient(tracer: InstrumentationSystem.tracer) }
        let app = buildApplication(
            service: options.name,
            configuration: ApplicationConfiguration(
                address: .hostname("127.0.0.1", port: options.port),
                serverName: options.name
            ),
            next: options.next,
            client: client
        )
        do {
            try await app.runService()
        } catch {
            try await client?.shutdown()
            throw error
        }
        try await client?.shutdown()
    }

    /// The options given, or nil on anything that is not an option above.
    static func options(from arguments: [String]) -> Options? {
        var options = Options()
        var rest = arguments[...]
        while let flag = rest.popFirst() {
            guard let value = rest.popFirst() else { return nil }
            switch flag {
            case "--port":
                guard let port = Int(value), (0 ... 65535).contains(port) else { return nil }
                options.port = port
            case "--next":
                guard value.hasPrefix("http://") else { return nil }
                options.next = value.hasSuffix("/") ? String(value.dropLast()) : value
            case "--name":
                guard !value.isEmpty, !value.contains(" ") else { return nil }
                options.name = value
            default:
                return nil
            }
        }
        return options
    }
}
