extension Local {
    // MARK: Synchronous scopes

    /// Runs `operation` with one attribute changed, and restores the previous value afterwards.
    ///
    /// ```swift
    /// request.withValue(\.depth, 3) { work() }
    /// ```
    ///
    /// The same as ``withValues(_:inheritance:file:line:operation:)`` with a change to one attribute: see
    /// there for what the task that opened the scope, and the children it creates, see.
    @inlinable
    public func withValue<T, R, E: Error>(
        _ keyPath: WritableKeyPath<Value, T>,
        _ value: T,
        inheritance: Inheritance? = nil,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () throws(E) -> R
    ) throws(E) -> R {
        try withValues({ $0[keyPath: keyPath] = value }, inheritance: inheritance, file: file, line: line, operation: operation
        )
    }

    /// Runs `operation` with the value changed by `change`, and restores the previous value
    /// afterwards: on return, on a thrown error (rethrown unchanged) and on cancellation.
    ///
    /// ```swift
    /// request.withValues({ $0.requestID = "abc"; $0.user = "ann" }) {
    ///     handle()
    /// }
    /// ```
    ///
    /// For a `.task` Local, inside the scope the task that opened it (its owner) reads and writes
    /// the scope's value; the owner's writes inside the scope are discarded when it ends. Child
    /// tasks created inside the scope (`async let`, task groups, `Task {}`, `Task.immediate`, but
    /// never `Task.detached`) inherit it by the policy `inheritance`, or the Local's own when nil:
    /// see ``Inheritance``. Scopes nest as a stack.
    ///
    /// For `.thread` and custom discriminators, the scope changes the current key's value and
    /// restores it afterwards; nothing is inherited, and `inheritance` has no effect.
    ///
    /// - Parameters:
    ///   - change: Changes the value the scope starts from (the current value).
    ///   - inheritance: What children created inside the scope see; nil for the Local's default.
    ///     Has no effect for `.thread` and custom discriminators, whose scopes nothing inherits.
    ///   - file: The file the scope is opened in, for ``LocalsSnapshot``'s listing: leave the
    ///     default.
    ///   - line: The line the scope is opened at, likewise.
    ///   - operation: The work to run inside the scope.
    /// - Returns: What `operation` returns.
    @inlinable
    @inline(__always)
    public func withValues<R, E: Error>(
        _ change: (inout Value) -> Void,
        inheritance: Inheritance? = nil,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () throws(E) -> R
    ) throws(E) -> R {
        guard case .tasks(let cells) = backend.kind else {
            return try withSwappedValues(change, operation: operation)
        }
        let origin = ScopeOrigin(file: file, line: line)
        // Unretained: this Local holds its backend for the whole scope.
        return try cells._withUnsafeGuaranteedRef { storage in
            storage.withScope(inheritance ?? self.inheritance, origin, change) {
                Result { () throws(E) -> R in try operation() }
            }
        }.get()
    }

    /// Runs `operation` inside a new scope that starts from the current value unchanged: the
    /// shorter spelling of `withValues({ _ in }) { ... }`.
    ///
    /// Open one at the root of a unit of work (a request, a job) so that the assignments its task
    /// makes inside reach the children it creates afterwards, and are dropped when it ends.
    @inlinable
    public func withScope<R, E: Error>(
        inheritance: Inheritance? = nil,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () throws(E) -> R
    ) throws(E) -> R {
        try withValues({ _ in }, inheritance: inheritance, file: file, line: line, operation: operation)
    }

    // MARK: Asynchronous scopes

    /// Runs `operation` with one attribute changed, and restores the previous value afterwards.
    ///
    /// ```swift
    /// try await request.withValue(\.requestID, "abc") { try await handle() }
    /// ```
    ///
    /// Keeps the caller's actor isolation: `operation` runs where the call was made, with no hop
    /// to the global executor. See ``withValues(_:inheritance:isolation:file:line:operation:)``.
    @inlinable
    public func withValue<T, R, E: Error>(
        _ keyPath: WritableKeyPath<Value, T>,
        _ value: T,
        inheritance: Inheritance? = nil,
        isolation: isolated (any Actor)? = #isolation,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        try await withValues({ $0[keyPath: keyPath] = value }, inheritance: inheritance,
            isolation: isolation,
            file: file,
            line: line,
            operation: operation
        )
    }

    /// Runs `operation` with the value changed by `change`, and restores the previous value
    /// afterwards: on return, on a thrown error (rethrown unchanged) and on cancellation.
    ///
    /// ```swift
    /// try await request.withValues({ $0.requestID = "abc"; $0.user = "ann" }) {
    ///     try await handle()
    /// }
    /// ```
    ///
    /// Keeps the caller's actor isolation: `operation` runs where the call was made, with no hop
    /// to the global executor.
    ///
    /// For a `.task` Local, inside the scope the task that opened it (its owner) reads and writes
    /// the scope's value, and its writes inside are discarded when the scope ends. Child tasks
    /// created inside the scope inherit by the policy `inheritance`, or the Local's own when nil:
    /// `async let` and task-group children (including discarding groups) for as long as they run,
    /// `Task {}` and `Task.immediate` even when they outlive the scope; `Task.detached` never.
    /// See ``Inheritance``.
    ///
    /// For `.thread` and custom discriminators, the scope changes the current key's value and
    /// restores that same key's value afterwards, even if the task moved to another thread at an
    /// `await` in between; nothing is inherited, and `inheritance` has no effect.
    @inlinable
    public func withValues<R, E: Error>(
        _ change: (inout Value) -> Void,
        inheritance: Inheritance? = nil,
        isolation: isolated (any Actor)? = #isolation,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        guard case .tasks(let cells) = backend.kind else {
            return try await withSwappedValues(change, isolation: isolation, operation: operation)
        }
        let origin = ScopeOrigin(file: file, line: line)
        // Unretained: this Local holds its backend for the whole scope. The frame is moved across
        // the `await` (so that it goes back uniquely referenced and is recycled), with the cell
        // unretained and the epoch that vouches for it (see `HeldCell`).
        let (cell, opened, epoch, chainKey) = cells._withUnsafeGuaranteedRef { storage in
            let (cell, frame, epoch) = storage.openScope(inheritance ?? self.inheritance, origin, change)
            frame.link(to: ScopeChain.unretainedHead(of: storage.chainKey))
            return (cell, frame, epoch, storage.chainKey)
        }
        var frame: ScopeFrame<Value>? = consume opened
        let result = await chainKey.withValue(
            frame.unsafelyUnwrapped,
            operation: { () async -> Result<R, E> in
                do throws(E) {
                    return .success(try await operation())
                } catch {
                    return .failure(error)
                }
            },
            isolation: isolation
        )
        cells._withUnsafeGuaranteedRef { $0.closeScope(cell, frame.take().unsafelyUnwrapped, epoch) }
        return try result.get()
    }

    /// Runs `operation` inside a new scope that starts from the current value unchanged: the
    /// shorter spelling of `withValues({ _ in }) { ... }`. Keeps the caller's actor isolation.
    @inlinable
    public func withScope<R, E: Error>(
        inheritance: Inheritance? = nil,
        isolation: isolated (any Actor)? = #isolation,
        file: StaticString = #fileID,
        line: UInt = #line,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        try await withValues({ _ in }, inheritance: inheritance, isolation: isolation, file: file, line: line, operation: operation
        )
    }

    // MARK: Internals

    /// A `.thread` or custom scope: change the current key's value, restore it afterwards.
    @usableFromInline
    func withSwappedValues<R, E: Error>(
        _ change: (inout Value) -> Void,
        operation: () throws(E) -> R
    ) throws(E) -> R {
        switch backend.kind {
        case .tasks(let cells), .threads(let cells):
            return try Self.withSwappedValues(cells, change, operation: operation)
        case .sessions(let sessions):
            return try Self.withSwappedValues(sessions, change, operation: operation)
        }
    }

    @usableFromInline
    func withSwappedValues<R, E: Error>(
        _ change: (inout Value) -> Void,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        switch backend.kind {
        case .tasks(let cells), .threads(let cells):
            return try await Self.withSwappedValues(cells, change, isolation: isolation, operation: operation)
        case .sessions(let sessions):
            return try await Self.withSwappedValues(sessions, change, isolation: isolation, operation: operation)
        }
    }

    /// `withSwappedValues` on `backend`, unretained: this Local holds it for the whole scope.
    static func withSwappedValues<B: SwappedScopes<Value>, R, E: Error>(
        _ backend: Unmanaged<B>,
        _ change: (inout Value) -> Void,
        operation: () throws(E) -> R
    ) throws(E) -> R {
        let saved = backend._withUnsafeGuaranteedRef { $0.swapIn(change) }
        defer { backend._withUnsafeGuaranteedRef { $0.restore(saved) } }
        return try operation()
    }

    static func withSwappedValues<B: SwappedScopes<Value>, R, E: Error>(
        _ backend: Unmanaged<B>,
        _ change: (inout Value) -> Void,
        isolation: isolated (any Actor)?,
        operation: () async throws(E) -> R
    ) async throws(E) -> R {
        let saved = backend._withUnsafeGuaranteedRef { $0.swapIn(change) }
        defer { backend._withUnsafeGuaranteedRef { $0.restore(saved) } }
        return try await operation()
    }
}
