import GRPCRequestID
import Logging

import Foundation  // FileHandle, for the usage line on standard error

/// `grpc-request-id [--port N]`: serves `locals.example.Echo` over plaintext HTTP/2 on 127.0.0.1,
/// logging to standard output with the call's id on every line written for a call.
@main
struct GRPCRequestIDMain {
    static let usage = "usage: grpc-request-id [--port N]   (N from 0 to 65535; default 8080, 0 picks a free port)"

    static func main() async throws {
        guard let port = port(from: Array(CommandLine.arguments.dropFirst())) else {
            FileHandle.standardError.write(Data((usage + "\n").utf8))
            exit(2)
        }
        let logger = makeLogger()
        let server = makeServer(port: port, logger: logger)
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await server.serve() }
            if let address = try? await server.transport.listeningAddress {
                logger.info("listening on \(address)")
            }
        }
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
