package import Locals

/// Opens one request's scopes: the id's Local with the id set, then each other chosen Local
/// unchanged, nested in that order, around an operation. The integrations' middleware holds one.
///
/// A Local with no current key (a custom discriminator's session Local, for a request that has
/// no session) gets no scope: the request is served, and that Local reads as outside a session.
package struct RequestScopes: Sendable {
    /// Opens a scope on the id's Local with the id stored, around a body.
    private let openWithID: @Sendable (String, Inheritance?, () async -> Void) async -> Void
    /// Opens a scope on one other Local, unchanged, around a body.
    private let others: [@Sendable (Inheritance?, () async -> Void) async -> Void]
    /// The fields the middleware's own log lines carry.
    package let fields: [LocalField]

    /// Stores the id at `keyPath` of `local`, and opens a scope on each of `others` as well.
    package init<Value, each Other>(
        id keyPath: WritableKeyPath<Value, String>,
        of local: Local<Value>,
        scoping others: repeat Local<each Other>,
        fields: [LocalField]
    ) {
        self.init(storing: keyPath, as: { $0 }, of: local, others: repeat each others, fields: fields)
    }

    /// Stores the id at an optional `keyPath` of `local`, and opens a scope on each of `others`.
    package init<Value, each Other>(
        id keyPath: WritableKeyPath<Value, String?>,
        of local: Local<Value>,
        scoping others: repeat Local<each Other>,
        fields: [LocalField]
    ) {
        self.init(storing: keyPath, as: { $0 }, of: local, others: repeat each others, fields: fields)
    }

    private init<Value, ID: Sendable, each Other>(
        storing keyPath: WritableKeyPath<Value, ID>,
        as makeID: @escaping @Sendable (String) -> ID,
        of local: Local<Value>,
        others: repeat Local<each Other>,
        fields: [LocalField]
    ) {
        // Key paths are immutable once made; Swift 6.3 does not mark a non-literal one Sendable.
        nonisolated(unsafe) let keyPath = keyPath
        self.init(
            openWithID: { id, inheritance, body in
                // A session Local where the request has no session: nothing to store the id in.
                guard local.hasCurrentKey else { return await body() }
                await local.withValue(keyPath, makeID(id), inheritance: inheritance) { await body() }
            },
            others: repeat each others,
            fields: fields
        )
    }

    private init<each Other>(
        openWithID: @escaping @Sendable (String, Inheritance?, () async -> Void) async -> Void,
        others: repeat Local<each Other>,
        fields: [LocalField]
    ) {
        var openers: [@Sendable (Inheritance?, () async -> Void) async -> Void] = []
        for other in repeat each others {
            openers.append { inheritance, body in
                // A session Local where the request has no session gets no scope (a scope there
                // would be a write with no key, which stops the program).
                guard other.hasCurrentKey else { return await body() }
                await other.withScope(inheritance: inheritance) { await body() }
            }
        }
        self.openWithID = openWithID
        self.others = openers
        self.fields = fields
    }

    /// Runs `operation` inside the request's scopes, with `id` stored; rethrows its error.
    ///
    /// - Parameter inheritance: The policy of every scope opened, or nil for each Local's own.
    package func run<R>(
        id: String,
        inheritance: Inheritance?,
        _ operation: () async throws -> R
    ) async throws -> R {
        var result: Result<R, any Error>?
        await openWithID(id, inheritance) {
            await enter(from: 0, inheritance) {
                do {
                    result = .success(try await operation())
                } catch {
                    result = .failure(error)
                }
            }
        }
        // Every opener runs its body exactly once, so the result is always set here.
        return try result.unsafelyUnwrapped.get()
    }

    private func enter(from index: Int, _ inheritance: Inheritance?, _ body: () async -> Void) async {
        guard index < others.count else { return await body() }
        await others[index](inheritance) { await enter(from: index + 1, inheritance, body) }
    }

    /// The fields' values in the running context, by key; a field whose value is nil is left out.
    package var currentFieldValues: [(key: String, value: String)] {
        fields.compactMap { field in field.currentValue.map { (field.key, $0) } }
    }
}
