public import Logging
import Locals

extension Logger.MetadataProvider {
    /// Adds `request-id` (and `user`, once a handler has set it) to every line logged while a
    /// request is handled, from the request's own task or any child task it created.
    ///
    /// A log handler calls its metadata provider on the task that writes the line, so the
    /// provider reads ``currentRequest`` there. Outside a request it adds nothing.
    ///
    /// ```swift
    /// let logger = Logger(label: "server") { label in
    ///     StreamLogHandler.standardOutput(label: label, metadataProvider: .requestID)
    /// }
    /// ```
    public static let requestID = Logger.MetadataProvider {
        // One read of the whole value: the id and the user always come from the same request.
        let request = currentRequest.value
        var metadata: Logger.Metadata = [:]
        if let id = request.id {
            metadata["request-id"] = .string(id)
        }
        if let user = request.user {
            metadata["user"] = .string(user)
        }
        return metadata
    }
}
