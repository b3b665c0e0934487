#if Logging
public import Locals
public import Logging

extension Logger.MetadataProvider {
    /// Adds the chosen fields of Locals to every line logged, read in the task (or thread, or
    /// session) that writes the line.
    ///
    /// ```swift
    /// let request = Local { RequestState() }
    /// let fields = [
    ///     LocalField("request-id", of: request, at: \.requestID),
    ///     LocalField("user", of: request, at: \.user),     // left out while nil
    /// ]
    /// LoggingSystem.bootstrap(StreamLogHandler.standardOutput, metadataProvider: .locals(fields))
    ///
    /// await request.withValue(\.requestID, "r-1") {
    ///     Logger(label: "app").info("hello")       // ... request-id=r-1 [app] hello
    /// }
    /// ```
    ///
    /// Each field is read when a line is logged, so a line logged in a child task, or inside a
    /// ``LocalsSnapshot``'s `run` on an event loop or a queue, carries the values that code sees.
    /// A field whose value is nil is left out of the line. Fields are written in the order given;
    /// of two with the same key, the later one's value is kept.
    ///
    /// Where the provider's metadata meets other metadata, swift-log's rule decides: a logger's own
    /// metadata (`logger[metadataKey:]`) is overridden by the provider's, and both by the metadata
    /// given with the line. To use it beside other providers (a tracing library's trace and span
    /// ids, say), list them in `.multiplex`, where a later provider's key overrides an earlier one's:
    ///
    /// ```swift
    /// LoggingSystem.bootstrap(
    ///     StreamLogHandler.standardOutput,
    ///     metadataProvider: .multiplex([.locals(fields), OTel.makeLoggingMetadataProvider()])
    /// )
    /// ```
    ///
    /// Making the provider also makes every ``LocalsSnapshot`` carry `Logger.current` (as
    /// `LocalsSnapshot.carry(.currentLogger)` does): a snapshot run in a callback logs through the
    /// logger that `withLogger` bound where the snapshot was taken.
    ///
    /// - Parameter fields: The fields to add, made once at startup.
    /// - Returns: A provider for a log handler or `LoggingSystem.bootstrap`.
    public static func locals(_ fields: [LocalField]) -> Logger.MetadataProvider {
        LocalsSnapshot.carry(CurrentLogger())
        return Logger.MetadataProvider {
            var metadata: Logger.Metadata = [:]
            for field in fields {
                if let text = field.currentValue {
                    metadata[field.key] = .string(text)
                }
            }
            return metadata
        }
    }
}
#endif
