import Synchronization

// What a `LocalsSnapshot` takes from each Local, and how `run` puts it back on the running task
// or thread. The rules, for a `.task` Local:
//
// - A context inside a scope sees it, in `run`, as a child created at the capture point would,
//   by the scope's policy: `.copy` a copy of the scope's value (taken when `run` starts), `.fresh`
//   the initial value, `.shared` the scope's value itself, `.overlay` reads through to it.
// - A context that reads through a scope by reference (a `.shared` scope's child, an `.overlay`
//   child, with its own writes) reads through to it the same way in `run`.
// - A context's own value (outside any scope, or a `.copy` or `.fresh` child's) is copied.
// - Inside `run` the running context's cell takes that route, as a scope does, and restores it
//   afterwards; the Local's task-local publishes the scope to children created inside `run`.
//
// A `.thread` Local's value is copied and swapped in for `run`, as a `.thread` scope does. A
// custom discriminator's session is captured by reference: inside `run` it is the current session,
// whatever the discriminator says, and writes go to it.

/// Every live Local, for `LocalsSnapshot.capture()`: held weakly, so that no snapshot keeps a
/// Local alive, and a Local that goes leaves the list.
enum LiveLocals {
    private final class Entry: @unchecked Sendable {
        // @unchecked: set once at creation; a weak reference reads atomically.
        weak var storage: (any SnapshotCapturing)?

        init(_ storage: any SnapshotCapturing) {
            self.storage = storage
        }
    }

    /// Ordered by the Locals' ids, so that listings come out in the order the Locals were made.
    private static let entries = Locked.make([(id: UInt64, entry: Entry)]())

    static func add(_ storage: some SnapshotCapturing) {
        let entry = Entry(storage)
        entries.withLock { $0.append((storage.localID, entry)) }
    }

    static func remove(_ id: UInt64) {
        let removed = entries.withLock { entries -> [(id: UInt64, entry: Entry)] in
            guard let index = entries.firstIndex(where: { $0.id == id }) else { return [] }
            return [entries.remove(at: index)]
        }
        withExtendedLifetime(removed) {}
    }

    /// The Locals alive now.
    static func all() -> [any SnapshotCapturing] {
        entries.withLock { entries in entries.compactMap { $0.entry.storage } }
    }
}

/// A storage that can say what the running context sees of it.
protocol SnapshotCapturing: AnyObject, Sendable {
    var localID: UInt64 { get }
    /// What the running context sees of this Local, or nil where it holds nothing for it.
    func capturePart() -> (any SnapshotPart)?
}

/// One Local's part of a snapshot.
protocol SnapshotPart: Sendable {
    /// The Local, its value and where it came from, on one line.
    var listing: String { get }
    /// Runs `body` with this part in place for the running task or thread, then takes it away.
    func withEntered<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R
    func withEntered<R, E: Error>(
        isolation: isolated (any Actor)?, _ body: () async throws(E) -> R
    ) async throws(E) -> R
}

extension Storage: SnapshotCapturing {
    func capturePart() -> (any SnapshotPart)? {
        switch kind {
        case .task:
            guard let cell = existingCell() else {
                // Nothing touched yet, inside a scope: a child created here would see it.
                return scopeKey.get().map { TaskPart(self, .scope($0)) }
            }
            switch cell.route {
            case .own:
                return TaskPart(self, .value(cell.own.value))
            case .scope:
                let frame = cell.scope.unsafelyUnwrapped
                // A frozen `.overlay` child's private frame is its own value.
                return TaskPart(self, frame.isPrivate ? .value(frame.value) : .scope(frame))
            case .sharedScope:
                return TaskPart(self, .scope(cell.scope.unsafelyUnwrapped))
            case .overlay:
                let layer = cell.overlay.unsafelyUnwrapped.layer.copy()
                return TaskPart(self, .overlay(cell.scope.unsafelyUnwrapped, layer))
            }
        case .thread:
            return existingCell().map { ThreadPart(self, $0.own.value) }
        case .custom:
            return existingSessionCell().map { SessionPart(self, $0) }
        }
    }

    /// The running context's session cell if it has one, made on no first touch.
    func existingSessionCell() -> SessionCell<Value>? {
        if sessionOverrides.load(ordering: .relaxed) != 0, let cell = sessionOverride.get() {
            return cell
        }
        return sessions.unsafelyUnwrapped.existingCell(self)
    }

    /// The session a snapshot's `run` made current in the running task, locked, if it is live.
    @usableFromInline
    func lockedOverrideSessionCell() -> SessionCell<Value>? {
        guard let cell = sessionOverride.get() else { return nil }
        cell.lock()
        if cell.isLive {
            return cell
        }
        cell.unlock()
        return nil
    }

    // MARK: Entering a part

    /// Where a `.task` part put the running context's accesses, and what to put back.
    enum Entered {
        case scope(cell: Unmanaged<Cell<Value>>, frame: ScopeFrame<Value>, epoch: UInt)
        case redirect(Redirect)
    }

    struct Redirect {
        let cell: Unmanaged<Cell<Value>>
        let epoch: UInt
        let owner: OwnerKey
        let route: Route
        let frame: ScopeFrame<Value>
        let savedRoute: Route
        unowned(unsafe) let savedScope: ScopeFrame<Value>?
        let savedOverlay: OverlayState<Value>?
    }

    /// Puts a `.task` part in place for the running context; returns what to undo and the scope to
    /// publish to the children created meanwhile.
    func enter(_ kind: TaskPart<Value>.Kind) -> (Entered, ScopeFrame<Value>) {
        switch kind {
        case .value(let value):
            let opened = openScope(inheritance, .unopened) { $0 = value }
            return (.scope(cell: opened.cell, frame: opened.frame, epoch: opened.epoch), opened.frame)
        case .scope(let frame) where frame.inheritance == .copy:
            let value = frame.loadValue()
            let opened = openScope(.copy, frame.origin) { $0 = value }
            return (.scope(cell: opened.cell, frame: opened.frame, epoch: opened.epoch), opened.frame)
        case .scope(let frame) where frame.inheritance == .fresh:
            let owner = resolveCell().owner
            let value = makeInitialValue(for: owner)
            let opened = openScope(.fresh, frame.origin) { $0 = value }
            return (.scope(cell: opened.cell, frame: opened.frame, epoch: opened.epoch), opened.frame)
        case .scope(let frame) where frame.inheritance == .shared:
            return (.redirect(redirect(.sharedScope, frame, nil)), frame)
        case .scope(let frame):
            return (.redirect(redirect(.overlay, frame, OverlayState())), frame)
        case .overlay(let frame, let layer):
            return (.redirect(redirect(.overlay, frame, OverlayState(layer.copy()))), frame)
        }
    }

    /// Takes away what `enter` put in place.
    func leave(_ entered: Entered) {
        switch entered {
        case .scope(let cell, let frame, let epoch):
            closeScope((cell, frame, epoch))
        case .redirect(let redirect):
            undo(redirect)
        }
    }

    /// Points the running context's accesses at `frame` by `route`, as a child of that scope.
    private func redirect(_ route: Route, _ frame: ScopeFrame<Value>, _ overlay: OverlayState<Value>?) -> Redirect {
        let cell = cachedCell() ?? Unmanaged.passUnretained(resolveCell())
        let epoch = self.epoch.load(ordering: .relaxed)
        return cell._withUnsafeGuaranteedRef { cell in
            let redirect = Redirect(
                cell: Unmanaged.passUnretained(cell), epoch: epoch, owner: cell.owner, route: route, frame: frame,
                savedRoute: cell.route, savedScope: cell.scope, savedOverlay: cell.overlay
            )
            cell.route = route
            cell.scope = frame
            cell.overlay = overlay
            return redirect
        }
    }

    /// Puts back what `redirect` changed. If the running context's cell was dropped meanwhile
    /// (by `discard(key:)` from elsewhere), its new cell goes unless it can take the old route
    /// (as when a scope closes, see `closeScopeSlowly`).
    private func undo(_ redirect: Redirect) {
        var dropped: OverlayState<Value>?
        if epoch.load(ordering: .relaxed) == redirect.epoch {
            redirect.cell._withUnsafeGuaranteedRef { cell in
                dropped = cell.overlay
                cell.route = redirect.savedRoute
                cell.scope = redirect.savedScope
                cell.overlay = redirect.savedOverlay
            }
        } else if let cell = existingCell(), cell.scope === redirect.frame, cell.route == redirect.route {
            let fits = redirect.savedRoute != .own || cell is OwnedCell<Value>
            if fits, !cell.isPlaceholder {
                dropped = cell.overlay
                cell.route = redirect.savedRoute
                cell.scope = redirect.savedScope
                cell.overlay = redirect.savedOverlay
            } else {
                withExtendedLifetime(removeCell(of: redirect.owner, byOwner: true)) {}
            }
        }
        withExtendedLifetime(dropped) {}  // released once the cell is whole again
    }
}

/// A `.task` Local's part: what the context saw, by the rules at the top of this file.
final class TaskPart<Value: Sendable>: SnapshotPart, @unchecked Sendable {
    // @unchecked: `storage` is set once at creation (a weak reference reads atomically); the
    // frames are read and written only under their locks or by the task whose cell routes there.
    enum Kind {
        /// A value of the context's own: copied.
        case value(Value)
        /// A scope the context is in: seen as a child created here would, by its policy.
        case scope(ScopeFrame<Value>)
        /// An `.overlay` child's view: the scope, read through, with a copy of its writes.
        case overlay(ScopeFrame<Value>, OverlayLayer<Value>)
    }

    weak var storage: Storage<Value>?
    let kind: Kind
    let local: String

    init(_ storage: Storage<Value>, _ kind: Kind) {
        self.storage = storage
        self.kind = kind
        local = storage.description
    }

    var listing: String {
        switch kind {
        case .value(let value):
            return "\(local) = \(value) (its own value, copied)"
        case .scope(let frame):
            let policy = frame.inheritance
            return "\(local) = \(frame.loadValue()) (a .\(policy) scope opened at \(frame.origin))"
        case .overlay(let frame, let layer):
            var view = frame.loadValue()
            layer.apply(to: &view)
            return "\(local) = \(view) (reading through the .overlay scope opened at \(frame.origin))"
        }
    }

    func withEntered<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        guard let storage else { return try body() }  // the Local is gone: nothing to put back
        let (entered, published) = storage.enter(kind)
        let result = storage.scopeKey.withValue(published) { Result { () throws(E) -> R in try body() } }
        storage.leave(entered)
        return try result.get()
    }

    func withEntered<R, E: Error>(
        isolation: isolated (any Actor)?, _ body: () async throws(E) -> R
    ) async throws(E) -> R {
        guard let storage else { return try await body() }
        let (entered, published) = storage.enter(kind)
        let result = await storage.scopeKey.withValue(
            published,
            operation: { () async -> Result<R, E> in
                do throws(E) {
                    return .success(try await body())
                } catch {
                    return .failure(error)
                }
            },
            isolation: isolation
        )
        storage.leave(entered)
        return try result.get()
    }
}

/// A `.thread` Local's part: a copy of the capturing thread's value, swapped in as a `.thread`
/// scope does.
final class ThreadPart<Value: Sendable>: SnapshotPart, @unchecked Sendable {
    // @unchecked: `storage` is set once at creation (a weak reference reads atomically).
    weak var storage: Storage<Value>?
    let value: Value
    let local: String

    init(_ storage: Storage<Value>, _ value: Value) {
        self.storage = storage
        self.value = value
        local = storage.description
    }

    var listing: String { "\(local) = \(value) (the capturing thread's value, copied)" }

    func withEntered<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        guard let storage else { return try body() }
        let saved = storage.swapIn { $0 = self.value }
        defer { storage.restore(saved) }
        return try body()
    }

    func withEntered<R, E: Error>(
        isolation: isolated (any Actor)?, _ body: () async throws(E) -> R
    ) async throws(E) -> R {
        guard let storage else { return try await body() }
        let saved = storage.swapIn { $0 = self.value }
        defer { storage.restore(saved) }
        return try await body()
    }
}

/// A custom discriminator's part: the capturing context's session, which is the current one in
/// `run` whatever the discriminator says.
final class SessionPart<Value: Sendable>: SnapshotPart, @unchecked Sendable {
    // @unchecked: `storage` is set once at creation; the cell is touched only under its lock.
    weak var storage: Storage<Value>?
    let cell: SessionCell<Value>
    let local: String

    init(_ storage: Storage<Value>, _ cell: SessionCell<Value>) {
        self.storage = storage
        self.cell = cell
        local = storage.description
    }

    var listing: String {
        let value = cell.withLock { cell.isLive ? "\(cell.value.pointee)" : "(discarded)" }
        return "\(local) = \(value) (the session \(cell.keyDescription))"
    }

    func withEntered<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        guard let storage else { return try body() }
        storage.sessionOverrides.add(1, ordering: .relaxed)
        defer { storage.sessionOverrides.subtract(1, ordering: .relaxed) }
        return try storage.sessionOverride.withValue(cell) { Result { () throws(E) -> R in try body() } }.get()
    }

    func withEntered<R, E: Error>(
        isolation: isolated (any Actor)?, _ body: () async throws(E) -> R
    ) async throws(E) -> R {
        guard let storage else { return try await body() }
        storage.sessionOverrides.add(1, ordering: .relaxed)
        defer { storage.sessionOverrides.subtract(1, ordering: .relaxed) }
        return try await storage.sessionOverride.withValue(
            cell,
            operation: { () async -> Result<R, E> in
                do throws(E) {
                    return .success(try await body())
                } catch {
                    return .failure(error)
                }
            },
            isolation: isolation
        ).get()
    }
}
