import Synchronization

/// Where the running context's value of a ``Local`` lives right now.
enum Place<Value: Sendable> {
    /// A value only the running task or thread touches.
    case owned(OwnedCell<Value>)
    /// An `.overlay` child: its own writes on top of the scope's live value.
    case overlay(OverlayLayer<Value>, ScopeFrame<Value>)
    /// A value others may touch at once: a scope's value, or a session's.
    case shared(SharedCell<Value>)
    /// A custom discriminator with no current key: nothing is stored.
    case unkeyed
}

/// The per-key tables of one ``Local``. Reached only through its lock; user code (initializers,
/// deinits) never runs while the lock is held.
struct LocalTables<Value: Sendable> {
    /// Heap and `async let` tasks outside scopes, by address; the cell's id tells the owner
    /// from a later task at the same address.
    var tasks: [UInt: OwnedCell<Value>] = [:]
    var threads: [ThreadID: OwnedCell<Value>] = [:]
    var sessions: [SessionKey: SharedCell<Value>] = [:]
    /// Cells removed by someone other than their owner (a `discard(key:)` from elsewhere, an
    /// async `.thread` scope's restore) while the owner may be reading them through its lookup
    /// cache: released at the owner's next touch of this Local, or when a sweep finds the owner
    /// task ended (parked cells count toward the sweep threshold), or when the thread exits.
    var parked: [StorageKey: [OwnedCell<Value>]] = [:]
    /// Session keys whose initializer is running now (on any thread).
    var initializingSessions: Set<SessionKey> = []
    /// Sweep the task table for ended tasks when it grows to this size.
    var sweepAt = LocalTables.minimumSweep

    static var minimumSweep: Int { 64 }

    /// Removes the cells of tasks that have ended and returns them, to be released outside the lock.
    mutating func sweepEndedTasks() -> [OwnedCell<Value>] {
        var ended: [OwnedCell<Value>] = []
        let pinned = tasks.filter { $0.value.record != nil }
        for ((address, cell), hasEnded) in zip(pinned, TaskRegistry.haveEnded(pinned.map { $0.value.record! }))
        where hasEnded {
            ended.append(cell)
            tasks[address] = nil
        }
        let parkedTasks = parked.filter { $0.value.allSatisfy { $0.record != nil } }
        let parkedRecords = parkedTasks.map { $0.value[0].record! }
        for ((key, cells), hasEnded) in zip(parkedTasks, TaskRegistry.haveEnded(parkedRecords)) where hasEnded {
            ended += cells
            parked[key] = nil
        }
        sweepAt = max(Self.minimumSweep, (tasks.count + parked.count) * 2)
        return ended
    }
}

enum SessionLookup<Value: Sendable> {
    case found(SharedCell<Value>)
    /// Another thread is running this session's initializer.
    case busy
    /// The caller is to run the initializer.
    case mine
}

/// Keeps garbage alive until the lock is released, then drops it, so that deinits run outside it.
struct Garbage<Value> {
    var cells: [OwnedCell<Value>] = []
    var sessions: [SharedCell<Value>] = []
    var values: [Value] = []
}

extension Local {
    // MARK: Keys

    /// The running context's key, or nil where a custom discriminator has none.
    func currentKey() -> StorageKey? {
        switch mode {
        case .task:
            if let task = TaskIdentity.current {
                return .task(task)
            }
            return .thread(ThreadContext.current.id)
        case .thread:
            return .thread(ThreadContext.current.id)
        case .custom(let discriminator):
            return discriminator.currentKey().map(StorageKey.custom)
        }
    }

    /// The scope the running task can see for this Local, if any.
    func currentFrame() -> ScopeFrame<Value>? {
        guard case .task = mode, !census.isEmpty else { return nil }
        return scopeKey.get()
    }

    // MARK: Places

    /// Finds (creating on first touch) where the running context's value lives.
    func currentPlace() -> Place<Value> {
        guard let key = currentKey() else { return .unkeyed }
        return place(for: key, frame: currentFrame())
    }

    func place(for key: StorageKey, frame: ScopeFrame<Value>?) -> Place<Value> {
        if case .custom(let session) = key {
            return .shared(sessionCell(session))
        }
        guard let frame else {
            // Read the epoch before the lookup: a removal after it makes the cached entry stale.
            let epoch = self.epoch.load(ordering: .relaxed)
            let cell = ownedCell(key) { makeInitialValue(for: key) }
            switch key {
            case .task(let task):
                ThreadContext.current.cache(cell, local: localID, address: task.address, id: task.id, epoch: epoch)
            case .thread(let thread) where thread == ThreadContext.current.id:
                ThreadContext.current.cache(cell, local: localID, address: 0, id: 0, epoch: epoch)
            default:
                break
            }
            return .owned(cell)
        }
        if frame.isOwned(by: key) || frame.inheritance == .shared {
            return .shared(frame)
        }
        let cell = childCell(key, of: frame)
        if let overlayCell = cell as? OverlayCell<Value> {
            return .overlay(overlayCell.layer, frame)
        }
        return .owned(cell)
    }

    /// A child's own cell under a `.copy`, `.overlay` or `.fresh` scope.
    private func childCell(_ key: StorageKey, of frame: ScopeFrame<Value>) -> OwnedCell<Value> {
        let seed = { (id: UInt64, record: TaskRecord?) -> OwnedCell<Value> in
            switch frame.inheritance {
            case .copy, .shared: OwnedCell(frame.loadValue(), id: id, record: record)
            case .overlay: OverlayCell(frame.loadValue(), id: id, record: record)
            case .fresh: OwnedCell(self.makeInitialValue(for: key), id: id, record: record)
            }
        }
        guard case .task(let task) = key, TaskRuntime.isKeptByFrame(task) else {
            return findOrCreateOwnedCell(key, seed: seed)
        }
        // No pin bounds this task (see `TaskRuntime`): kept by the frame it inherited instead.
        if let cell = frame.withStackChildren({ $0[task.address] }), cell.id == task.id {
            return cell
        }
        let cell = seed(task.id, nil)
        let replaced = frame.withStackChildren { children in
            children.updateValue(cell, forKey: task.address)
        }
        withExtendedLifetime(replaced) {}
        return cell
    }

    /// The running task's or thread's own cell, created with `initial` on first touch.
    func ownedCell(_ key: StorageKey, initial: () -> Value) -> OwnedCell<Value> {
        findOrCreateOwnedCell(key) { OwnedCell(initial(), id: $0, record: $1) }
    }

    /// Finds the cell of `key`, or makes it on first touch with `seed`, which is given the owner's
    /// id and record and may run user code (the initializer): no lock is held meanwhile.
    private func findOrCreateOwnedCell(
        _ key: StorageKey,
        seed: (_ id: UInt64, _ record: TaskRecord?) -> OwnedCell<Value>
    ) -> OwnedCell<Value> {
        if let cell = existingOwnedCell(key) {
            return cell
        }
        // First touch: compute the value with no lock held, then publish it. The owner is here
        // and not inside an access, so whatever was parked for it (see `parked`) goes too.
        var garbage = Garbage<Value>()
        let cell: OwnedCell<Value>
        switch key {
        case .task(let task):
            cell = seed(task.id, TaskRegistry.recordForCurrentTask(task))
            tables.withLock { tables in
                var freed = false
                if let stale = tables.tasks.updateValue(cell, forKey: task.address) {
                    garbage.cells.append(stale)
                    freed = true
                }
                garbage.cells += tables.parked.removeValue(forKey: key) ?? []
                // Parked cells count: they hold ended tasks' values until a sweep.
                if tables.tasks.count + tables.parked.count >= tables.sweepAt {
                    let ended = tables.sweepEndedTasks()
                    freed = freed || !ended.isEmpty
                    garbage.cells += ended
                }
                // A freed cell must never be found in a thread's cache again, not even by a task
                // whose address repeats.
                if freed {
                    epoch.add(1, ordering: .relaxed)
                }
            }
        case .thread(let thread):
            cell = seed(0, nil)
            tables.withLock { tables in
                if let stale = tables.threads.updateValue(cell, forKey: thread) {
                    garbage.cells.append(stale)
                }
                garbage.cells += tables.parked.removeValue(forKey: key) ?? []
            }
            ThreadContext.current.observeExit(by: self)
        case .custom, .none:
            preconditionFailure("swift-locals: \(key) has no owned cell")
        }
        withExtendedLifetime(garbage) {}
        return cell
    }

    func existingOwnedCell(_ key: StorageKey) -> OwnedCell<Value>? {
        switch key {
        case .task(let task):
            let cell = tables.withLock { $0.tasks[task.address] }
            // A cell left by an earlier task at this address is replaced when the new one is made.
            return cell?.id == task.id ? cell : nil
        case .thread(let thread):
            return tables.withLock { $0.threads[thread] }
        case .custom, .none:
            return nil
        }
    }

    /// A session's shared cell, created on first touch. If another thread is running the same
    /// session's initializer, waits for it, so the initializer runs once per key.
    private func sessionCell(_ session: SessionKey) -> SharedCell<Value> {
        while true {
            let lookup = tables.withLock { tables -> SessionLookup<Value> in
                if let cell = tables.sessions[session] { return .found(cell) }
                if tables.initializingSessions.contains(session) { return .busy }
                tables.initializingSessions.insert(session)
                return .mine
            }
            switch lookup {
            case .found(let cell):
                return cell
            case .busy:
                if ThreadContext.current.isInitializing(ObjectIdentifier(self), .custom(session)) {
                    reentrantInitializer(key: .custom(session))
                }
                ThreadContext.yield()
            case .mine:
                let value = makeInitialValue(for: .custom(session), checkReentrancy: false)
                let cell = SharedCell(value)
                tables.withLock { tables in
                    tables.sessions[session] = cell
                    tables.initializingSessions.remove(session)
                }
                return cell
            }
        }
    }

    // MARK: Initial values

    /// Runs the initializer for `key`, stopping the program if it touches the same key again.
    func makeInitialValue(for key: StorageKey, checkReentrancy: Bool = true) -> Value {
        let context = ThreadContext.current
        let me = ObjectIdentifier(self)
        if checkReentrancy, context.isInitializing(me, key) {
            reentrantInitializer(key: key)
        }
        context.initializing.append((me, key))
        defer {
            if let index = context.initializing.lastIndex(where: { $0.storage == me && $0.key == key }) {
                context.initializing.remove(at: index)
            }
        }
        return initialValue()
    }

    private func reentrantInitializer(key: StorageKey) -> Never {
        fatalError(
            """
            swift-locals: the initializer of Local<\(Value.self)> (discriminator \(discriminatorName)) \
            touched the same Local for the same key (\(key)) while computing that key's first value, \
            which would never finish. Compute the initial value without reading or writing this \
            Local; other Locals are fine.
            """
        )
    }

    func missingKeyForWrite() -> Never {
        fatalError(
            """
            swift-locals: cannot write Local<\(Value.self)>: \(discriminatorName).currentKey is nil \
            here, so there is no key to store the value under. Write only where the discriminator \
            has a current key (for example inside the scope that sets your session), or make \
            currentKey return one. Reads without a key return the initializer's value unstored.
            """
        )
    }

    // MARK: Removal

    /// Drops the running context's own storage (see ``Local/reset()``).
    func resetCurrent() {
        guard let key = currentKey() else { return }
        var garbage = Garbage<Value>()
        switch key {
        case .custom(let session):
            // The removed cell (and its value) is released at the end of this function.
            garbage.sessions += tables.withLock { $0.sessions.removeValue(forKey: session) }.map { [$0] } ?? []
        case .task, .thread:
            if let frame = currentFrame() {
                if frame.isOwned(by: key) || frame.inheritance == .shared {
                    garbage.values.append(frame.exchangeValue(makeInitialValue(for: key)))
                } else if case .task(let task) = key, TaskRuntime.isKeptByFrame(task) {
                    if let cell = frame.withStackChildren({ $0.removeValue(forKey: task.address) }) {
                        garbage.cells.append(cell)
                    }
                } else {
                    garbage.cells += removeOwnedCell(key)
                }
            } else {
                garbage.cells += removeOwnedCell(key)
            }
        case .none:
            break
        }
        withExtendedLifetime(garbage) {}
    }

    /// Removes a task's or thread's cell from the tables. Returns it for release when the caller
    /// is its owner, or its owner task has ended; parks it otherwise (the owner may be reading it
    /// now).
    func removeOwnedCell(_ key: StorageKey) -> [OwnedCell<Value>] {
        let byOwner = isCurrent(key)
        return tables.withLock { tables -> [OwnedCell<Value>] in
            let removed: OwnedCell<Value>
            switch key {
            case .task(let task):
                guard let cell = tables.tasks[task.address], cell.id == task.id else {
                    return []
                }
                tables.tasks[task.address] = nil
                removed = cell
            case .thread(let thread):
                guard let cell = tables.threads.removeValue(forKey: thread) else { return [] }
                removed = cell
            case .custom, .none:
                return []
            }
            epoch.add(1, ordering: .relaxed)
            if byOwner || removed.record.map({ TaskRegistry.haveEnded([$0])[0] }) == true {
                return [removed]
            }
            tables.parked[key, default: []].append(removed)
            return []
        }
    }

    /// Whether `key` is the running task's or thread's own key.
    private func isCurrent(_ key: StorageKey) -> Bool {
        switch key {
        case .task(let task):
            guard let current = TaskIdentity.current else { return false }
            return current.address == task.address && current.id == task.id
        case .thread(let thread):
            // A .task Local keys by the thread only outside tasks.
            return (mode.isThread || TaskIdentity.current == nil) && thread == ThreadContext.current.id
        case .custom, .none:
            return false
        }
    }

    /// Restores `value` as the value of `key` from somewhere other than its owner: a session,
    /// or the thread an async `.thread` scope started on. Only where the key still has storage
    /// (a scope never brings back a discarded session or an exited thread's value). A thread's
    /// cell is swapped, never written from outside, and the old one parked: its owner may be
    /// reading it.
    func replaceOwnedCell(_ key: StorageKey, with value: Value) {
        var garbage = Garbage<Value>()
        switch key {
        case .thread(let thread):
            let cell = OwnedCell(value)
            tables.withLock { tables in
                guard let old = tables.threads[thread] else { return }
                tables.threads[thread] = cell
                tables.parked[key, default: []].append(old)
                epoch.add(1, ordering: .relaxed)
            }
        case .custom(let session):
            if let cell = tables.withLock({ $0.sessions[session] }) {
                garbage.values.append(cell.exchangeValue(value))
            }
        case .task, .none:
            preconditionFailure("swift-locals: \(key) is not restored by replacement")
        }
        withExtendedLifetime(garbage) {}
    }
}

extension Local: ThreadExitObserver {
    func threadExited(_ thread: ThreadID) {
        let cells = tables.withLock { tables in
            (tables.threads.removeValue(forKey: thread), tables.parked.removeValue(forKey: .thread(thread)))
        }
        withExtendedLifetime(cells) {}
    }
}
