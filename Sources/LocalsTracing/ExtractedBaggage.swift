#if Tracing
public import ServiceContextModule

/// The baggage that came with a request, as ``LocalsBaggage`` extracted it into a `ServiceContext`.
///
/// Extraction keeps two things: the text of each member whose key names a ``BaggageField``, to be
/// bound into its `Local` by ``LocalsBaggage/withValues(from:isolation:operation:)``, and every
/// other member as it arrived, to be forwarded on outgoing calls made with this context.
///
/// ```swift
/// var context = ServiceContext.topLevel
/// baggage.extract(headers, into: &context, using: HeadersExtractor())
/// context.extractedBaggage?.value(forKey: "tenant")     // "acme"
/// context.extractedBaggage?.passThrough                 // ["vendor=x;ttl=3"]
/// ```
public struct ExtractedBaggage: Sendable, Hashable {
    struct FieldValue: Sendable, Hashable {
        let key: String
        let value: String
    }

    /// Known members, in the order received.
    var fields: [FieldValue]
    /// Members with no known key, in wire form, joined by single commas.
    var passThroughHeader: String

    init(fields: [FieldValue], passThroughHeader: String) {
        self.fields = fields
        self.passThroughHeader = passThroughHeader
    }

    /// The received text for a field's key: percent-decoded, without properties, and free of
    /// control characters and line breaks. The field's own `decode` may still reject it when it is
    /// bound. Nil when no acceptable member had that key.
    public func value(forKey key: String) -> String? {
        fields.first { $0.key == key }?.value
    }

    /// ``value(forKey:)`` for every field key that arrived.
    public var fieldValues: [String: String] {
        Dictionary(fields.lazy.map { ($0.key, $0.value) }, uniquingKeysWith: { _, last in last })
    }

    /// The members without a known key, each exactly as received (properties included, still
    /// percent-encoded) less the whitespace around it, in the order received. They are forwarded
    /// unchanged on every call injected with this context.
    public var passThrough: [String] {
        passThroughHeader.isEmpty ? [] : passThroughHeader.split(separator: ",").map(String.init)
    }
}

extension ServiceContext {
    /// The baggage a ``LocalsBaggage`` instrument extracted into this context, or nil when none
    /// arrived (no header, or no acceptable member in it).
    public var extractedBaggage: ExtractedBaggage? {
        get { self[ExtractedBaggageKey.self] }
        set { self[ExtractedBaggageKey.self] = newValue }
    }
}

enum ExtractedBaggageKey: ServiceContextKey {
    typealias Value = ExtractedBaggage
    static var nameOverride: String? { "baggage" }
}
#endif
