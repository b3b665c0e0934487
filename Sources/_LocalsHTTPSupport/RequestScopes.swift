package import Locals

/// Opens one request's scopes: the id's Local with the id set, then each other chosen Local
/// unchanged, nested in that order, around an operation, all under one inheritance policy. The
/// integrations' middleware holds one.
///
/// A Local with no current key (a custom discriminator's session Local, for a request that has
/// no session) gets no scope: the request is served, and that Local reads as outside a session.
package struct RequestScopes: Sendable {
    /// Opens a scope on the id's Local with the id stored, around a body.
    private let openWithID: @Sendable (String, () async -> Void) async -> Void
    /// Opens a scope on one other Local, unchanged, around a body.
    private let others: [@Sendable (() async -> Void) async -> Void]
    /// The fields the middleware's own log lines carry.
    package let fields: [LocalField]

    /// Stores the id at `keyPath` of `local` (a `String`, or a `String?` that is nil outside a
    /// request), and opens a scope on each of `others` as well; every scope with the policy
    /// `inheritance`, or nil for each Local's own.
    package init<Value, ID: RequestIDStorable, each Other>(
        id keyPath: WritableKeyPath<Value, ID>,
        of local: Local<Value>,
        scoping others: repeat Local<each Other>,
        inheritance: Inheritance? = nil,
        fields: [LocalField]
    ) {
        // Key paths are immutable once made; Swift 6.3 does not mark a non-literal one Sendable.
        nonisolated(unsafe) let keyPath = keyPath
        openWithID = { id, body in
            // A session Local where the request has no session: nothing to store the id in.
            guard local.hasCurrentKey else { return await body() }
            await local.withValue(keyPath, ID(requestID: id), inheritance: inheritance) { await body() }
        }
        var openers: [@Sendable (() async -> Void) async -> Void] = []
        for other in repeat each others {
            openers.append { body in
                // A session Local where the request has no session gets no scope (a scope there
                // would be a write with no key, which stops the program).
                guard other.hasCurrentKey else { return await body() }
                await other.withScope(inheritance: inheritance) { await body() }
            }
        }
        self.others = openers
        self.fields = fields
    }

    /// Runs `operation` inside the request's scopes, with `id` stored; rethrows its error.
    package func run<R>(id: String, _ operation: () async throws -> R) async throws -> R {
        var result: Result<R, any Error>?
        await openWithID(id) {
            await enter(from: 0) {
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

    private func enter(from index: Int, _ body: () async -> Void) async {
        guard index < others.count else { return await body() }
        let openNext = others[index]
        await openNext { await enter(from: index + 1, body) }
    }

    /// The fields' values in the running context, by key; a field whose value is nil is left out.
    package var currentFieldValues: [(key: String, value: String)] {
        fields.compactMap { field in field.currentValue.map { (field.key, $0) } }
    }
}
