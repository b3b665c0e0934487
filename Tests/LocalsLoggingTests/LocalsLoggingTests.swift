#if Logging
import Dispatch
import Locals
import LocalsLogging
import Logging
import Synchronization
import Testing

struct RequestState: Sendable {
    var requestID = "-"
    var user: String? = nil
}

let request = Local { RequestState() }
let fields = [
    LocalField("request-id", of: request, at: \.requestID),
    LocalField("user", of: request, at: \.user),
]

/// A log handler that keeps each line's message and the metadata its provider and call gave.
struct RecordingHandler: LogHandler {
    final class Lines: Sendable {
        let lines = Mutex<[(message: String, metadata: Logger.Metadata)]>([])
        var all: [(message: String, metadata: Logger.Metadata)] { lines.withLock { $0 } }
    }

    let recorded: Lines
    var metadataProvider: Logger.MetadataProvider?
    var metadata: Logger.Metadata = [:]
    var logLevel: Logger.Level = .trace

    init(_ recorded: Lines, provider: Logger.MetadataProvider?) {
        self.recorded = recorded
        self.metadataProvider = provider
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        var merged = metadata
        merged.merge(metadataProvider?.get() ?? [:]) { _, provided in provided }
        merged.merge(event.metadata ?? [:]) { _, explicit in explicit }
        recorded.lines.withLock { $0.append(("\(event.message)", merged)) }
    }
}

func recordingLogger(_ label: String, provider: Logger.MetadataProvider?) -> (Logger, RecordingHandler.Lines) {
    let lines = RecordingHandler.Lines()
    return (Logger(label: label) { _ in RecordingHandler(lines, provider: provider) }, lines)
}

/// Runs `body` on a plain thread of a dispatch queue (outside any task), and returns its result.
func onQueue<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(returning: body()) }
    }
}

@Suite("LocalsLogging: Local fields as log metadata, and the task-local logger in snapshots")
struct LocalsLoggingTests {
    @Test("each line carries the fields its task sees; a nil field is left out")
    func fieldsAsMetadata() async {
        let (logger, lines) = recordingLogger("app", provider: .locals(fields))
        logger.info("outside")
        await request.withValues({ $0.requestID = "r-1"; $0.user = "ann" }) {
            await Task { logger.info("in a child") }.value
        }
        let metadata = lines.all.map(\.metadata)
        #expect(metadata.count == 2)
        #expect(metadata.first == ["request-id": "-"])
        #expect(metadata.last == ["request-id": "r-1", "user": "ann"])
    }

    @Test("in .multiplex, the later provider decides a key both give; the line's own metadata decides over both")
    func multiplexed() async {
        let other = Logger.MetadataProvider { ["request-id": "from other", "trace-id": "t-1"] }
        let (logger, lines) = recordingLogger("app", provider: .multiplex([.locals(fields), other]))
        let (reversed, reversedLines) = recordingLogger("app", provider: .multiplex([other, .locals(fields)]))
        request.withValue(\.requestID, "r-2") {
            logger.info("line")
            reversed.info("line")
            reversed.info("line", metadata: ["request-id": "explicit"])
        }
        #expect(lines.all.map(\.metadata) == [["request-id": "from other", "trace-id": "t-1"]])
        #expect(
            reversedLines.all.map(\.metadata) == [
                ["request-id": "r-2", "trace-id": "t-1"],
                ["request-id": "explicit", "trace-id": "t-1"],
            ]
        )
    }

    @Test("a snapshot made after .locals carries Logger.current into a callback, which logs with the request's fields")
    func snapshotCarriesLogger() async {
        let (logger, lines) = recordingLogger("request", provider: .locals(fields))
        let snapshot = request.withValue(\.requestID, "r-3") {
            withLogger(logger) { _ in LocalsSnapshot.capture() }
        }
        let labels = await onQueue { () -> [String] in
            let inside = snapshot.run { () -> String in
                Logger.current.info("in the callback")
                return Logger.current.label
            }
            return [inside, Logger.current.label]
        }
        #expect(labels == ["request", ""])
        #expect(lines.all.map(\.message) == ["in the callback"])
        #expect(lines.all.map(\.metadata) == [["request-id": "r-3"]])
    }

    @Test("an async run binds the captured logger for the operation and its children")
    func asyncRun() async {
        LocalsSnapshot.carry(.currentLogger)
        let (logger, _) = recordingLogger("request", provider: nil)
        let snapshot = withLogger(logger) { _ in LocalsSnapshot.capture() }
        let labels = await Task.detached { () -> [String] in
            let inside = await snapshot.run { () async -> [String] in
                async let child = Logger.current.label
                return [Logger.current.label, await child]
            }
            return inside + [Logger.current.label]
        }.value
        #expect(labels == ["request", "request", ""])
    }

    @Test("an empty snapshot runs with swift-log's unbound logger")
    func emptySnapshot() async {
        LocalsSnapshot.carry(.currentLogger)
        let (logger, _) = recordingLogger("request", provider: nil)
        let label = withLogger(logger) { _ in LocalsSnapshot().run { Logger.current.label } }
        #expect(label == "")
    }
}
#endif
