#if Tracing
public import Locals

/// One attribute of a `Local` that travels to other services under a W3C baggage key.
///
/// A field names the baggage key, the `Local` and the key path of the attribute, and how the
/// attribute's value turns into text and back. List the fields once, at startup, in a
/// ``LocalsBaggage``:
///
/// ```swift
/// struct RequestState: Sendable {
///     var requestID: String? = nil
///     var tenant: String? = nil
///     var priority: Int? = nil
/// }
/// let request = Local { RequestState() }
///
/// let baggage = LocalsBaggage([
///     BaggageField("tenant", of: request, at: \.tenant),
///     BaggageField("request-id", of: request, at: \.requestID),
///     BaggageField("priority", of: request, at: \.priority),      // any LosslessStringConvertible
/// ])
/// ```
///
/// On the way out, a field's text is read from its `Local` in the task that makes the outgoing
/// call, so a value the handler wrote a moment earlier is the one that travels. A field whose
/// value is absent (nil, or nil from `encode`) is not sent. On the way in, a member with the
/// field's key sets the attribute inside the scope that ``LocalsBaggage/withValues(from:isolation:operation:)``
/// opens, unless its text is rejected: text holding a control character or a line break is
/// always rejected, and `decode` (or `accepting`) may reject more. A rejected member is dropped:
/// the attribute keeps the value it had, and the member is not forwarded.
public struct BaggageField: Sendable {
    /// The baggage key, an RFC 7230 token such as `tenant` or `request-id`. Keys compare
    /// case-sensitively.
    public let key: String

    /// The field with its Local's value type erased.
    @usableFromInline let access: any AnyBaggageFieldAccess

    /// A field with its own conversions to and from text.
    ///
    /// ```swift
    /// BaggageField(
    ///     "deadline-ms", of: request, at: \.deadline,
    ///     encode: { $0.map { String($0.milliseconds) } },
    ///     decode: { Int64($0).map { Deadline(milliseconds: $0) } }
    /// )
    /// ```
    ///
    /// - Parameters:
    ///   - key: The baggage key: a non-empty RFC 7230 token. Any other key stops the program, since a
    ///     field list is fixed at startup and a bad key is a programming error.
    ///   - local: The `Local` that holds the attribute.
    ///   - keyPath: The attribute.
    ///   - encode: The text to send for a value, or nil to send nothing. Any text is fine: it is
    ///     percent-encoded on the wire.
    ///   - decode: The value for a received text, or nil to reject it. It sees text that has been
    ///     percent-decoded and checked for control characters and line breaks.
    // Inlinable so that its closures are compiled where `Value` is known: reading the Local and
    // opening its scopes through them costs what it costs in your own code, not the far slower
    // unspecialized generic path that the type-erased field would otherwise take.
    @inlinable
    public init<Value, T>(
        _ key: String,
        of local: Local<Value>,
        at keyPath: any WritableKeyPath<Value, T> & Sendable,
        encode: @escaping @Sendable (T) -> String?,
        decode: @escaping @Sendable (String) -> T?
    ) {
        precondition(Self.isValidKey(key), "A baggage key must be a non-empty RFC 7230 token: \(key.debugDescription)")
        self.key = key
        // Made once: `local.value` spells `\Value.self` at each access, and that key path is built
        // anew every time (it comes from generic code), which would dominate an inject.
        let wholeValue: any WritableKeyPath<Value, Value> & Sendable = \Value.self
        self.access = BaggageFieldAccess<Value>(
            key: key,
            local: local,
            encode: { value in encode(value[keyPath: keyPath]) },
            apply: { value, text in
                guard let decoded = decode(text) else { return false }
                value[keyPath: keyPath] = decoded
                return true
            },
            read: { local[dynamicMember: wholeValue] },
            withScope: { change, isolation, operation in
                try await local.withValues(change, isolation: isolation, operation: operation)
            }
        )
    }

    /// A field for an optional attribute of a type that converts to text and back, such as
    /// `String?` or `Int?`: nil is not sent, and a received text that `T(text)` refuses is rejected.
    ///
    /// ```swift
    /// BaggageField("tenant", of: request, at: \.tenant)
    /// BaggageField("request-id", of: request, at: \.requestID, accepting: { $0.utf8.count <= 128 })
    /// ```
    ///
    /// - Parameters:
    ///   - key: The baggage key: a non-empty RFC 7230 token (anything else stops the program).
    ///   - local: The `Local` that holds the attribute.
    ///   - keyPath: The attribute.
    ///   - accept: Checks a received text before it is converted; false rejects it. Accepts any
    ///     text by default (control characters and line breaks are rejected before it is called).
    @inlinable
    public init<Value, T: LosslessStringConvertible & Sendable>(
        _ key: String,
        of local: Local<Value>,
        at keyPath: any WritableKeyPath<Value, T?> & Sendable,
        accepting accept: @escaping @Sendable (String) -> Bool = { _ in true }
    ) {
        self.init(
            key,
            of: local,
            at: keyPath,
            encode: { $0?.description },
            decode: { (text: String) -> T?? in
                guard accept(text), let value = T(text) else { return nil }
                return .some(value)
            }
        )
    }

    /// A field that is sent and never written back: its text is the ``Locals/LocalField``'s
    /// value in the task that makes the outgoing call; a received member with its key is dropped,
    /// since this service's Local, not the caller, decides that key's value from here on.
    ///
    /// ```swift
    /// let userField = LocalField("user", of: request, at: \.user)    // also a log field, a span attribute
    /// let baggage = LocalsBaggage([
    ///     BaggageField("tenant", of: request, at: \.tenant),          // received and sent
    ///     BaggageField(sending: userField),                           // sent only
    /// ])
    /// ```
    ///
    /// - Parameter field: The field; its key is the baggage key, a non-empty RFC 7230 token
    ///   (anything else stops the program).
    public init(sending field: LocalField) {
        precondition(Self.isValidKey(field.key), "A baggage key must be a non-empty RFC 7230 token: \(field.key.debugDescription)")
        self.key = field.key
        self.access = SendOnlyFieldAccess(field)
    }

    /// Whether `key` can name a baggage member: a non-empty RFC 7230 token.
    public static func isValidKey(_ key: String) -> Bool {
        !key.isEmpty && key.utf8.allSatisfy(W3CBaggageFormat.isTokenCharacter)
    }
}

/// A field's access to its Local, with the Local's value type hidden.
@usableFromInline
protocol AnyBaggageFieldAccess: Sendable {
    /// Identifies the Local, so that fields of one Local are read and bound together.
    var localID: ObjectIdentifier { get }
    /// Makes the group of all fields of this field's Local, this one included.
    func makeGroup(_ fields: [any AnyBaggageFieldAccess]) -> any AnyBaggageFieldGroup
}

/// A field's access to a Local whose values are `Value`.
///
/// Everything that touches the Local goes through closures made in ``BaggageField``'s inlinable
/// initializers, that is, specialized for `Value` in the module that declares the field.
@usableFromInline
struct BaggageFieldAccess<Value: Sendable>: AnyBaggageFieldAccess {
    let key: String
    let local: Local<Value>
    /// The text to send for the attribute of a value, nil for none.
    let encode: @Sendable (Value) -> String?
    /// Sets the attribute from a received text; false when the text is rejected.
    let apply: @Sendable (inout Value, String) -> Bool
    /// Reads the Local's whole value in the current task.
    let read: @Sendable () -> Value
    /// Runs the operation in a scope of the Local whose value `change` sets up.
    let withScope: @Sendable (
        _ change: (inout Value) -> Void,
        _ isolation: isolated (any Actor)?,
        _ operation: () async throws -> Void
    ) async throws -> Void

    @usableFromInline
    init(
        key: String,
        local: Local<Value>,
        encode: @escaping @Sendable (Value) -> String?,
        apply: @escaping @Sendable (inout Value, String) -> Bool,
        read: @escaping @Sendable () -> Value,
        withScope: @escaping @Sendable (
            _ change: (inout Value) -> Void,
            _ isolation: isolated (any Actor)?,
            _ operation: () async throws -> Void
        ) async throws -> Void
    ) {
        self.key = key
        self.local = local
        self.encode = encode
        self.apply = apply
        self.read = read
        self.withScope = withScope
    }

    @usableFromInline
    var localID: ObjectIdentifier { ObjectIdentifier(local) }

    @usableFromInline
    func makeGroup(_ fields: [any AnyBaggageFieldAccess]) -> any AnyBaggageFieldGroup {
        // Fields with the same Local have the same value type: `localID` names one object.
        BaggageFieldGroup(fields: fields.map { $0 as! BaggageFieldAccess<Value> })
    }
}

/// A field that is only sent: read as text through the core's `LocalField`, which hides its Local,
/// so it is a group of its own (an object, for an identity of its own) that binds nothing.
final class SendOnlyFieldAccess: AnyBaggageFieldAccess, AnyBaggageFieldGroup {
    let field: LocalField

    init(_ field: LocalField) {
        self.field = field
    }

    var localID: ObjectIdentifier { ObjectIdentifier(self) }

    func makeGroup(_ fields: [any AnyBaggageFieldAccess]) -> any AnyBaggageFieldGroup { self }

    func appendFields(to writer: inout BaggageHeaderWriter) {
        guard let text = field.currentValue else { return }
        _ = writer.appendMember(key: field.key, text: text)
    }

    // Binds nothing: `withValues(from:isolation:operation:)` is the group's default.
}
#endif
