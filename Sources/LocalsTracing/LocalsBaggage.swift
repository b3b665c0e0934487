#if Tracing
public import Instrumentation
import Locals

/// A W3C Baggage instrument that carries chosen `Local` fields to other services, and passes the
/// rest of the received baggage along unchanged.
///
/// List the fields once, at startup. Install the instrument through ``LocalsBaggageTracer`` so that
/// HTTP clients that inject through `InstrumentationSystem.tracer` (AsyncHTTPClient among them)
/// use it, and open a scope around each incoming request with
/// ``withValues(extractedFrom:using:isolation:operation:)``:
///
/// ```swift
/// let baggage = LocalsBaggage([
///     BaggageField("tenant", of: request, at: \.tenant),
///     BaggageField("request-id", of: request, at: \.requestID),
/// ])
/// InstrumentationSystem.bootstrap(LocalsBaggageTracer(baggage))
///
/// // Around each request (a server middleware):
/// try await baggage.withValues(extractedFrom: request.headers, using: HeadersExtractor()) {
///     try await next(request)      // reads request.tenant; outgoing calls carry it
/// }
/// ```
///
/// **Outgoing** (``inject(_:into:using:)``): one `baggage` header with, first, each field whose
/// `Local` holds a value in the task that makes the call, percent-encoded; then the members of the
/// context's ``ExtractedBaggage`` that have no known key, exactly as received. Members are added in
/// that order while they fit the limits: at most ``maximumMembers`` members and ``maximumBytes``
/// bytes; a member that does not fit is left out whole, never split, and never an error.
///
/// **Incoming** (``extract(_:into:using:)``): the `baggage` header, parsed by the W3C grammar:
/// - Members are separated by commas, with optional spaces and tabs around them; empty members
///   (`a=1,,b=2`, a trailing comma) are skipped.
/// - A malformed member is dropped and the others are kept: a key that is not a token, a missing
///   `=`, a value with a character outside `baggage-octet` (a space, a quote, a comma, a
///   backslash, a control character, any non-ASCII byte), an empty or malformed property, or a `%`
///   that does not start a two-digit hexadecimal escape in the value or a property value.
/// - Duplicate keys: the last member with a key wins, in the place where the key first appeared,
///   as when assigning to an ordered dictionary.
/// - Limits, after duplicates are resolved: members beyond ``maximumMembers``, or that would take
///   the members (joined by single commas) past ``maximumBytes``, are dropped whole.
/// - A member with a field's key: its value is percent-decoded (octets that are not UTF-8 become
///   U+FFFD, as the specification requires); text with a control character (C0, DEL, C1) or a
///   line or paragraph separator is rejected and the member dropped, so that no received value can
///   break or forge a log line. Its properties are ignored: the `Local` holds the value only, and
///   the field is sent again from the `Local`.
/// - Any other member is kept as it arrived, properties included, to be forwarded.
///
/// Extraction never fails and never throws: at worst the context gets no baggage.
///
/// Making one makes every `LocalsSnapshot` carry `ServiceContext.current` too (as
/// `LocalsSnapshot.carry(ServiceContext.$current)` does): a callback run in a snapshot injects the
/// request's baggage and trace context into its outgoing calls.
public struct LocalsBaggage: Instrument, Sendable {
    /// The header name, lowercase as the specification recommends.
    public static let headerName = "baggage"
    /// The most list-members sent or kept: the specification's minimum for every platform.
    public static let maximumMembers = 64
    /// The most bytes of members (joined by single commas) sent or kept: the specification's
    /// minimum for every platform.
    public static let maximumBytes = 8_192

    /// The fields that travel, in the order given.
    public let fields: [BaggageField]

    /// One group per Local, in the order of each Local's first field.
    let groups: [any AnyBaggageFieldGroup]
    /// The fields' keys as UTF-8, for comparing with keys in received headers.
    let keys: [[UInt8]]

    /// Creates the instrument for `fields`.
    ///
    /// ```swift
    /// let baggage = LocalsBaggage([BaggageField("tenant", of: request, at: \.tenant)])
    /// ```
    ///
    /// Two fields with the same key stop the program: the list is fixed at startup, and which of
    /// the two a received member should set would be anyone's guess. Fields of one `Local` are
    /// read together, from one read of its value, and bound in one scope.
    public init(_ fields: [BaggageField]) {
        // Snapshots carry the request's context (its pass-through baggage and trace context) into
        // callbacks, where outgoing calls inject it.
        LocalsSnapshot.carry(ServiceContext.$current)
        var seen: Set<String> = []
        for field in fields {
            precondition(
                seen.insert(field.key).inserted,
                "Two baggage fields have the key \(field.key.debugDescription)"
            )
        }
        self.fields = fields
        self.keys = fields.map { Array($0.key.utf8) }
        var order: [ObjectIdentifier] = []
        var members: [ObjectIdentifier: [any AnyBaggageFieldAccess]] = [:]
        for field in fields {
            let id = field.access.localID
            if members[id] == nil { order.append(id) }
            members[id, default: []].append(field.access)
        }
        self.groups = order.map { id in
            let fieldsOfLocal = members[id]!
            return fieldsOfLocal[0].makeGroup(fieldsOfLocal)
        }
    }

    // MARK: Instrument

    /// Reads the `baggage` header from `carrier` and stores what it holds in
    /// `context.extractedBaggage`: the texts of known fields and the other members. Leaves the
    /// context unchanged when there is no header or no acceptable member in it.
    ///
    /// ```swift
    /// var context = ServiceContext.topLevel
    /// baggage.extract(request.headers, into: &context, using: HeadersExtractor())
    /// ```
    ///
    /// This fills the context only; ``withValues(from:isolation:operation:)`` binds the fields into
    /// their Locals.
    public func extract<Carrier, Extract>(
        _ carrier: Carrier,
        into context: inout ServiceContext,
        using extractor: Extract
    ) where Extract: Extractor, Extract.Carrier == Carrier {
        guard let header = extractor.extract(key: Self.headerName, from: carrier),
            let baggage = parse(header)
        else { return }
        context.extractedBaggage = baggage
    }

    /// Writes one `baggage` header into `carrier`: the fields whose Locals hold a value in the
    /// current task, then the members of `context.extractedBaggage` without a known key, within the
    /// limits. Writes nothing when there is nothing to send.
    ///
    /// ```swift
    /// var headers: [String: String] = [:]
    /// baggage.inject(ServiceContext.current ?? .topLevel, into: &headers, using: DictionaryInjector())
    /// ```
    ///
    /// Field values come from the Locals, not from `context`, because Locals are writable: what
    /// travels is the value the calling code sees now, including writes made since the request
    /// arrived. So call it in the task that makes the outgoing call, as HTTP clients do.
    public func inject<Carrier, Inject>(
        _ context: ServiceContext,
        into carrier: inout Carrier,
        using injector: Inject
    ) where Inject: Injector, Inject.Carrier == Carrier {
        let passThrough = context.extractedBaggage?.passThroughHeader ?? ""
        guard let header = header(passingThrough: passThrough) else { return }
        injector.inject(header, forKey: Self.headerName, into: &carrier)
    }

    // MARK: Scopes

    /// Runs `operation` with the fields of `context.extractedBaggage` bound into their Locals and
    /// `context` bound as `ServiceContext.current`, and restores both afterwards.
    ///
    /// ```swift
    /// try await baggage.withValues(from: ServiceContext.current ?? .topLevel) {
    ///     try await handle()     // request.tenant is the received tenant, here and in child tasks
    /// }
    /// ```
    ///
    /// It opens one scope on every Local that has a field (`withValues` of Locals), even when no
    /// member arrived for it, so that what the operation writes into those Locals stays inside it.
    /// Inside, a received field sets its attribute unless `decode` rejects it; an attribute with no
    /// acceptable member keeps the value it had. Children created inside inherit the values by each
    /// Local's inheritance policy, and binding `ServiceContext.current` lets outgoing calls forward
    /// the pass-through members (and the trace context of a tracer).
    ///
    /// A field of a Local with a custom discriminator (a session Local) is bound into the session
    /// current when the scope opens, by a scope of that session: for the operation's duration,
    /// every task of the session sees it, as with any scope of a session `Local`.
    /// Where no session is current (the `Local`'s `hasCurrentKey` is false), that Local gets no scope
    /// and its received members are not bound: the operation runs, reading the initializer's
    /// value there as any read without a key does. Binding never fails and never stops the
    /// program, whatever arrives.
    ///
    /// Keeps the caller's actor isolation.
    public func withValues<R, E: Error>(
        from context: ServiceContext,
        isolation: isolated (any Actor)? = #isolation,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        let baggage = context.extractedBaggage
        return try await ServiceContext.$current.withValue(
            context,
            operation: { () async -> Result<R, E> in
                do throws(E) {
                    return .success(try await bindGroups(from: 0, baggage, isolation: isolation, operation: operation))
                } catch {
                    return .failure(error)
                }
            },
            isolation: isolation
        ).get()
    }

    /// Extracts the baggage of `carrier` into the current context (or a top-level one), then runs
    /// `operation` as ``withValues(from:isolation:operation:)`` does: the framework-neutral body of
    /// a server middleware.
    ///
    /// ```swift
    /// try await baggage.withValues(extractedFrom: request.headers, using: HeadersExtractor()) {
    ///     try await next(request)
    /// }
    /// ```
    ///
    /// Only `carrier` counts: baggage already in the current context (from an enclosing request,
    /// say) is replaced, or removed when `carrier` has none. Anything else in the context, such as
    /// a span that a tracing middleware started for this request, is kept.
    public func withValues<Carrier, Extract: Extractor, R, E: Error>(
        extractedFrom carrier: Carrier,
        using extractor: Extract,
        isolation: isolated (any Actor)? = #isolation,
        operation: () async throws(E) -> R
    ) async throws(E) -> R where Extract.Carrier == Carrier {
        var context = ServiceContext.current ?? .topLevel
        context.extractedBaggage = nil
        extract(carrier, into: &context, using: extractor)
        return try await withValues(from: context, isolation: isolation, operation: operation)
    }

    /// Opens the scope of group `index`, and inside it those of the following groups, then runs
    /// `operation`.
    private func bindGroups<R, E: Error>(
        from index: Int,
        _ baggage: ExtractedBaggage?,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        guard index < groups.count else { return try await operation() }
        return try await groups[index].withValues(from: baggage, isolation: isolation) { () async throws(E) -> R in
            try await bindGroups(from: index + 1, baggage, isolation: isolation, operation: operation)
        }
    }

    // MARK: Wire format

    /// The known field whose key is `key`, if any.
    func fieldIndex(ofKey key: UnsafeBufferPointer<UInt8>) -> Int? {
        keys.firstIndex { known in
            known.count == key.count && known.withUnsafeBufferPointer { $0.elementsEqual(key) }
        }
    }

    /// The baggage a received header holds, or nil when it holds no acceptable member.
    func parse(_ header: String) -> ExtractedBaggage? {
        var header = header
        return header.withUTF8 { bytes -> ExtractedBaggage? in
            var members = W3CBaggageFormat.members(in: bytes)
            W3CBaggageFormat.deduplicate(&members, in: bytes)

            var fieldValues: [ExtractedBaggage.FieldValue] = []
            var kept = 0
            var keptBytes = 0
            // Pass-through members are moved to the front of `members`, in order.
            var passThroughCount = 0
            var passThroughBytes = 0
            for member in members {
                guard W3CBaggageFormat.fits(size: member.whole.count, afterMembers: kept, bytes: keptBytes) else {
                    continue
                }
                keptBytes += (kept > 0 ? 1 : 0) + member.whole.count
                kept += 1
                if let index = fieldIndex(ofKey: UnsafeBufferPointer(rebasing: bytes[member.key])) {
                    if let value = W3CBaggageFormat.decodedText(UnsafeBufferPointer(rebasing: bytes[member.value])) {
                        fieldValues.append(.init(key: fields[index].key, value: value))
                    }
                } else {
                    passThroughBytes += (passThroughCount > 0 ? 1 : 0) + member.whole.count
                    members[passThroughCount] = member
                    passThroughCount += 1
                }
            }
            guard !fieldValues.isEmpty || passThroughCount > 0 else { return nil }

            let passThrough = String(unsafeUninitializedCapacity: passThroughBytes) { output in
                var written = 0
                for member in members[..<passThroughCount] {
                    if written > 0 {
                        output[written] = UInt8(ascii: ",")
                        written += 1
                    }
                    let source = UnsafeBufferPointer(rebasing: bytes[member.whole])
                    _ = UnsafeMutableBufferPointer(rebasing: output[written...]).initialize(fromContentsOf: source)
                    written += source.count
                }
                return written
            }
            return ExtractedBaggage(fields: fieldValues, passThroughHeader: passThrough)
        }
    }

    /// The outgoing header: the current values of the fields, then the members of `passThrough`
    /// (wire form, joined by commas) whose key is not a field's. Nil when it would be empty.
    func header(passingThrough passThrough: String) -> String? {
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.maximumBytes) { buffer -> String? in
            var writer = BaggageHeaderWriter(buffer: buffer)
            for group in groups {
                group.appendFields(to: &writer)
            }
            if !passThrough.isEmpty {
                var passThrough = passThrough
                passThrough.withUTF8 { bytes in
                    var start = 0
                    while start < bytes.count {
                        var end = start
                        while end < bytes.count && bytes[end] != UInt8(ascii: ",") { end += 1 }
                        var keyEnd = start
                        while keyEnd < end && W3CBaggageFormat.isTokenCharacter(bytes[keyEnd]) { keyEnd += 1 }
                        // A field's key travels from its Local only, never twice.
                        if fieldIndex(ofKey: UnsafeBufferPointer(rebasing: bytes[start ..< keyEnd])) == nil {
                            _ = writer.appendRawMember(UnsafeBufferPointer(rebasing: bytes[start ..< end]))
                        }
                        start = end + 1
                    }
                }
            }
            return writer.members > 0 ? writer.header : nil
        }
    }
}

// MARK: - Fields of one Local

/// The fields of one Local, read and bound together.
@usableFromInline
protocol AnyBaggageFieldGroup: Sendable {
    /// Appends each field that has a value, from one read of the Local in the current task.
    func appendFields(to writer: inout BaggageHeaderWriter)

    /// Runs `operation` in a scope of the Local in which the fields received in `baggage` are set.
    func withValues<R, E: Error>(
        from baggage: ExtractedBaggage?,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R
}

extension AnyBaggageFieldGroup {
    /// Runs `operation` as it is: a group whose fields are only sent has nothing to bind.
    func withValues<R, E: Error>(
        from baggage: ExtractedBaggage?,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        try await operation()
    }
}

struct BaggageFieldGroup<Value: Sendable>: AnyBaggageFieldGroup {
    /// At least one field; the Local is read and scoped through the first one's closures.
    let fields: [BaggageFieldAccess<Value>]

    func appendFields(to writer: inout BaggageHeaderWriter) {
        // One read: fields of one Local always come from the same value.
        let value = fields[0].read()
        for field in fields {
            guard let text = field.encode(value) else { continue }
            _ = writer.appendMember(key: field.key, text: text)
        }
    }

    func withValues<R, E: Error>(
        from baggage: ExtractedBaggage?,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        guard fields[0].local.hasCurrentKey else {
            // A session Local where no session is current: there is nowhere to bind the fields.
            return try await operation()
        }
        var result: R?
        do {
            try await fields[0].withScope(
                { value in
                    guard let baggage else { return }
                    for field in fields {
                        if let text = baggage.value(forKey: field.key) {
                            _ = field.apply(&value, text)
                        }
                    }
                },
                isolation,
                { result = try await operation() }
            )
        } catch {
            // The scope itself throws nothing: every error is the operation's, so of type E.
            throw error as! E
        }
        return result!
    }
}
#endif
