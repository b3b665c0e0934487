#if Logging
package import Logging

extension RequestScopes {
    /// Logs at `notice` on `logger` that the incoming id `header` held was dropped and `id`
    /// generated instead, when it was; does nothing (and evaluates neither `metadata` nor
    /// `logger`) when the incoming id was used or there was none.
    ///
    /// The line carries the reason (``RequestID/problem``), `metadata`, and the fields' values in
    /// the running context, which win over `metadata` under the same key; the dropped id itself is
    /// not logged, being untrusted. `file`, `function` and `line` name the caller's place, so that
    /// the line's source is the integration's module.
    package func logDroppedID(
        _ id: RequestID,
        header: String,
        metadata: @autoclosure () -> Logger.Metadata = [:],
        on logger: @autoclosure () -> Logger,
        file: String = #fileID,
        function: String = #function,
        line: UInt = #line
    ) {
        guard let problem = id.problem else { return }
        var lineMetadata = metadata()
        lineMetadata["reason"] = "\(problem)"
        for (key, value) in currentFieldValues {
            lineMetadata[key] = .string(value)
        }
        logger().notice(
            "\(header) dropped, a new id generated (1 to \(RequestID.maximumLength) visible ASCII characters expected)",
            metadata: lineMetadata,
            file: file,
            function: function,
            line: line
        )
    }
}
#endif
