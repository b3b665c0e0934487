#if Logging
public import Locals
public import Logging

extension Logger.MetadataProvider {
    /// Adds the chosen fields of Locals to every line logged, read in the task (or thread, or
    /// session) that writes the line.
    ///
    /// ```swift
    /// let logger = Logger(label: "server") { label in
    ///     StreamLogHandler.standardOutput(
    ///         label: label,
    ///         metadataProvider: .locals([LocalField("request-id", of: request, at: \.requestID)])
    ///     )
    /// }
    /// ```
    ///
    /// A field whose value is nil is left out of the line.
    public static func locals(_ fields: [LocalField]) -> Logger.MetadataProvider {
        Logger.MetadataProvider {
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
