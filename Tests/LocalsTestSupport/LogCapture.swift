#if Logging
public import Locals
import LocalsLogging
public import Logging
import Synchronization

/// Keeps every line a `StreamLogHandler` writes, with chosen fields on each, for the integrations'
/// tests that check what a request logs.
public final class LogCapture: TextOutputStream, Sendable {
    private let lines = Mutex<[String]>([])
    private let fields: [LocalField]

    /// A capture whose loggers put `fields` on every line.
    public init(fields: [LocalField]) {
        self.fields = fields
    }

    public func write(_ string: String) {
        lines.withLock { $0.append(string) }
    }

    /// Every line written so far, in order.
    public var all: [String] {
        lines.withLock { $0 }
    }

    /// A logger writing here, with the capture's fields on every line.
    public func logger(_ label: String = "test") -> Logger {
        let fields = fields
        return Logger(label: label) { label in
            StreamLogHandler(label: label, stream: self, metadataProvider: .locals(fields))
        }
    }
}
#endif
