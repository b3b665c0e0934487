import Hummingbird
import HummingbirdRequestID
import Foundation

/// `request-id-server [--port N]`: serves `GET /hello/{name}`, `GET /stream/{name}`,
/// `GET /greet-later/{name}` and `GET /greet-later-naive/{name}` on 127.0.0.1, logging to standard output with the request id
/// on every line written for a request (and, from the naive route's callbacks, the wrong one).
/// Stops on SIGINT or SIGTERM.
@main
struct RequestIDServer {
    static let usage = "usage: request-id-server [--port N]   (N from 0 to 65535; default 8080, 0 picks a free port)"

    static func main() async throws {
        guard let port = port(from: Array(CommandLine.arguments.dropFirst())) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        let app = buildApplication(
            configuration: ApplicationConfiguration(
                address: .hostname("127.0.0.1", port: port),
                serverName: "request-id-server"
            )
        )
        try await app.runService()
    }

    /// The port given by `--port N` or `--port=N`, 8080 when absent, nil on anything else.
    static func port(from arguments: [String]) -> Int? {
        var value = "8080"
        switch arguments.count {
        case 0:
            break
        case 1 where arguments[0].hasPrefix("--port="):
            value = String(arguments[0].dropFirst("--port=".count))
        case 2 where arguments[0] == "--port":
            value = arguments[1]
        default:
            return nil
        }
        guard let port = Int(value), (0...65535).contains(port) else { return nil }
        return port
    }
}
