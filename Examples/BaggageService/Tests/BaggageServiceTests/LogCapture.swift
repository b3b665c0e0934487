import BaggageService
import Logging
import Synchronization

/// Keeps the lines a service logs, exactly as `ServiceLogHandler` would print them.
final class LogCapture: TextOutputStream, Sendable {
    private let lines = Mutex<[String]>([])

    func write(_ string: String) {
        lines.withLock { $0.append(string) }
    }

    /// Every line written so far, parsed.
    var entries: [LogEntry] {
        lines.withLock { $0 }.map(LogEntry.init)
    }

    /// A log handler maker for `buildApplication(makeLogHandler:)` that writes here.
    var makeLogHandler: LogHandlerMaker {
        { label, metadataProvider in
            ServiceLogHandler(label: label, stream: self, metadataProvider: metadataProvider)
        }
    }
}

/// One line of `ServiceLogHandler` output:
/// `<time> <level> <label>: tenant=<t> request-id=<id> k=v ... [<source>] <message>`.
struct LogEntry: CustomStringConvertible {
    let line: String
    let metadata: [String: String]
    let message: String

    init(_ line: String) {
        self.line = line.hasSuffix("\n") ? String(line.dropLast()) : line
        var metadata: [String: String] = [:]
        var message = ""
        // Metadata values contain no spaces: the service accepts only log-safe tenants and ids,
        // and the tests use plain names.
        if let colon = self.line.range(of: ": ") {
            var tokens = self.line[colon.upperBound...].split(separator: " ", omittingEmptySubsequences: false)[...]
            while let token = tokens.first, !token.hasPrefix("[") {
                tokens = tokens.dropFirst()
                if let equals = token.firstIndex(of: "=") {
                    metadata[String(token[..<equals])] = String(token[token.index(after: equals)...])
                }
            }
            message = tokens.dropFirst().joined(separator: " ")
        }
        self.metadata = metadata
        self.message = message
    }

    var tenant: String? { metadata["tenant"] }
    var requestID: String? { metadata["request-id"] }

    /// The request the line was written for, as far as the line says so itself: the `name` a
    /// handler line names, or the path of Hummingbird's request line.
    var requestName: String? {
        metadata["name"] ?? metadata["hb.request.path"].map { String($0.dropFirst("/hello/".count)) }
    }

    var description: String { line }
}
