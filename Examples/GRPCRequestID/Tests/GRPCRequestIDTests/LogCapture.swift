import Foundation
import GRPCRequestID
import Logging
import Synchronization

/// Keeps the lines a `StreamLogHandler` writes, exactly as they would appear on standard output.
final class LogCapture: TextOutputStream, Sendable {
    private let lines = Mutex<[String]>([])

    func write(_ string: String) {
        lines.withLock { $0.append(string) }
    }

    /// Every line written so far, parsed.
    var entries: [LogEntry] {
        lines.withLock { $0 }.map(LogEntry.init)
    }

    /// The example's logger, writing here.
    var logger: Logger {
        makeLogger { label, metadataProvider in
            StreamLogHandler(label: label, stream: self, metadataProvider: metadataProvider)
        }
    }
}

/// One line of `StreamLogHandler` output: `<time> <level> <label>: k=v k=v [<source>] <message>`.
struct LogEntry: CustomStringConvertible {
    let line: String
    let metadata: [String: String]
    let message: String

    init(_ line: String) {
        self.line = line.hasSuffix("\n") ? String(line.dropLast()) : line
        var metadata: [String: String] = [:]
        var message = ""
        // The metadata sits between the label's colon and the " [source] " token; our values
        // contain no spaces (ids and names are checked or generated that way).
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

    var requestID: String? { metadata["request-id"] }
    var description: String { line }
}
