import Vapor
import VaporRequestID

/// `vapor-request-id [--port N]`: serves `GET /hello/:name` and `GET /stream/:name` on 127.0.0.1,
/// logging to standard output with the request id on every line written for a request.
/// Stops on SIGINT or SIGTERM.
@main
struct VaporRequestIDMain {
    static let usage = "usage: vapor-request-id [--port N]   (N from 0 to 65535; default 8080, 0 picks a free port)"

    static func main() async throws {
        guard let port = port(from: Array(CommandLine.arguments.dropFirst())) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        // Vapor's own `serve` command, on loopback and the chosen port: it handles the signals.
        let environment = Environment(
            name: "production",
            arguments: ["vapor-request-id", "serve", "--hostname", "127.0.0.1", "--port", "\(port)"]
        )
        let app = try await Application.make(environment)
        app.configureRequestID()
        do {
            try await app.execute()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
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
