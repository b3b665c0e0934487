/// One named attribute of a `Local`, read as text for the running context.
///
/// The integrations take the attributes they write (log metadata, baggage members, response
/// headers, span attributes) as a list of fields, made once at startup:
///
/// ```swift
/// struct RequestState: Sendable {
///     var requestID = "-"
///     var user: String? = nil
/// }
/// let request = Local { RequestState() }
///
/// let fields = [
///     LocalField("request-id", of: request, at: \.requestID),
///     LocalField("user", of: request, at: \.user),      // left out while nil
/// ]
/// ```
///
/// A field reads its Local where ``currentValue`` is asked for: in the task, thread or session
/// that logs the line or makes the call, like any other read of the Local (a first touch runs its
/// initializer).
public struct LocalField: Sendable {
    /// The name the field is written under: a metadata key, a baggage key, a header name.
    public let key: String

    private let read: @Sendable () -> String?

    /// A field whose attribute is always present.
    ///
    /// - Parameters:
    ///   - key: The name the field is written under.
    ///   - local: The `Local` that holds the attribute.
    ///   - keyPath: The attribute; its `description` is the field's text.
    public init<Value, T: CustomStringConvertible>(
        _ key: String,
        of local: Local<Value>,
        at keyPath: KeyPath<Value, T>
    ) {
        // The text's key path, made once: the closure then captures no metatype of `T`, which need
        // not be Sendable. Key paths are immutable once made; Swift 6.3 does not mark a non-literal
        // one Sendable.
        nonisolated(unsafe) let text = keyPath.appending(path: \T.description)
        self.key = key
        self.read = { local[dynamicMember: text] }
    }

    /// A field whose attribute is optional: while it is nil the field is left out.
    ///
    /// - Parameters:
    ///   - key: The name the field is written under.
    ///   - local: The `Local` that holds the attribute.
    ///   - keyPath: The attribute; its wrapped value's `description` is the field's text.
    public init<Value, T: CustomStringConvertible>(
        _ key: String,
        of local: Local<Value>,
        at keyPath: KeyPath<Value, T?>
    ) {
        nonisolated(unsafe) let text = keyPath.appending(path: \T?.?.description)
        self.key = key
        self.read = { local[dynamicMember: text] }
    }

    /// The field's text for the running context, or nil where its attribute is nil.
    public var currentValue: String? {
        read()
    }
}
