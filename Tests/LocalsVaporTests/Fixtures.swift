#if Vapor
import Locals
import LocalsLogging
import Logging
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

/// Keeps every line a `StreamLogHandler` writes.
final class LogCapture: TextOutputStream, Sendable {
    private let lines = Mutex<[String]>([])

    func write(_ string: String) {
        lines.withLock { $0.append(string) }
    }

    var all: [String] {
        lines.withLock { $0 }
    }

    /// A logger writing here, with `fields` on every line.
    func logger(_ label: String = "test") -> Logger {
        Logger(label: label) { label in
            StreamLogHandler(label: label, stream: self, metadataProvider: .locals(fields))
        }
    }
}

/// Whether `text` is a lowercase version 4 UUID, as the middleware generates.
func isGeneratedID(_ text: String) -> Bool {
    let utf8 = Array(text.utf8)
    guard utf8.count == 36 else { return false }
    for (index, byte) in utf8.enumerated() {
        if [8, 13, 18, 23].contains(index) {
            guard byte == UInt8(ascii: "-") else { return false }
        } else {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte)
            else { return false }
        }
    }
    return utf8[14] == UInt8(ascii: "4")
}
#endif
