import Synchronization

extension CellStorage {
    // MARK: Reset and discard

    /// Drops the running context's own storage (see ``Local/reset()``).
    func resetCurrent() {
        let context = ThreadContext.current
        let owner = currentOwner(context).owner
        // Inside a synchronous snapshot run: its view of this Local, put in place first. Not from
        // the initializer that the view itself runs: as outside runs, the key has no value yet.
        if holdsTasks, let run = context.activeRun, run.owner == owner,
            !context.isInitializing(ObjectIdentifier(facts), owner)
        {
            _ = resolveCell()
        }
        guard let cell = existingCell() else {
            // No cell yet: a scope the running task owns, or shares, still has a value to reset.
            if holdsTasks, let frame = visibleScope(for: owner), frame.inheritance == .shared || frame.owner == owner {
                let replaced = frame.exchangeValue(facts.makeInitialValue(for: frame.owner))
                withExtendedLifetime(replaced) {}
            }
            return
        }
        switch cell.route {
        case .own:
            let removed = removeCell(of: cell.owner, byOwner: true)
            withExtendedLifetime(removed) {}
        case .scope where cell.scope.unsafelyUnwrapped.isPrivate:
            // A frozen `.overlay` child starts over from the scope it inherited.
            // The task is in no scope of its own now, so the innermost one it sees is the one it
            // inherited and froze from.
            let overlay = cell.overlay.unsafelyUnwrapped
            let kept = overlay.frozen
            cell.point(to: .overlay, visibleScope(for: cell.owner))
            overlay.frozen = nil
            withExtendedLifetime(kept) {}
        case .scope, .sharedScope:
            let replaced = cell.scope.unsafelyUnwrapped.exchangeValue(facts.makeInitialValue(for: cell.owner))
            // As a write: a synchronous run's view now holds a value of the context's own, which
            // a capture inside the run takes.
            noteWrite(cell)
            withExtendedLifetime(replaced) {}
        case .overlay:
            let overlay = cell.overlay.unsafelyUnwrapped
            let dropped = overlay.layer.clear()
            overlay.layerChanged()
            withExtendedLifetime(dropped) {}
        }
    }

    /// Drops one key's storage (see ``Local/discard(key:)``).
    func discard<K: Hashable & Sendable>(key: K) {
        let owner: OwnerKey? =
            switch key {
            case let key as TaskDiscriminator.Key:
                switch key {
                case .task(let task): holdsTasks ? OwnerKey(address: task.address, id: task.id) : nil
                case .thread(let thread): OwnerKey(thread)
                }
            case let task as TaskID: holdsTasks ? OwnerKey(address: task.address, id: task.id) : nil
            case let thread as ThreadID: OwnerKey(thread)
            default: nil
            }
        guard let owner else {
            let expected = holdsTasks ? "TaskDiscriminator.Key, TaskID or ThreadID" : "ThreadID"
            fatalError(
                """
                swift-locals: discard(key:) on Local<\(Value.self)> was given a key of type \(K.self), but \
                its discriminator \(facts.discriminatorName) keys values by \(expected): no context could ever \
                have that key, so nothing would be discarded. Pass one of those.
                """
            )
        }
        let byOwner = isCurrent(owner)
        let removed = openScopes.discard(HashedKey(owner)) { removeCell(of: owner, byOwner: byOwner) }
        withExtendedLifetime(removed) {}
    }

    // MARK: Removal

    /// Takes out `owner`'s cell. Returns it for release when the caller is its owner or the owner
    /// task has ended; parks it otherwise (the owner may be reading it now).
    func removeCell(of owner: OwnerKey, byOwner: Bool) -> [Cell<Value>] {
        tables.withLock { tables -> [Cell<Value>] in
            let removed: Cell<Value>?
            if owner.isThread {
                removed = tables.threads.removeValue(forKey: owner.id)
            } else {
                removed = tables.tasks.remove(at: owner.address) { $0.owner.id == owner.id }
            }
            guard let removed else { return [] }
            epoch.add(1, ordering: .relaxed)
            if byOwner || removed.ownerHasEnded {
                return [removed]
            }
            tables.parked.append(removed)
            return []
        }
    }

    /// Takes out the cells of children that `ScopeFrame` bounded, now that it is gone. Their
    /// tasks have ended (each saw the frame while it ran), so nothing needs to be parked.
    func removeCells(keptBy frame: [OwnerKey]) {
        let removed = tables.withLock { tables in
            frame.compactMap { owner in tables.tasks.remove(at: owner.address) { $0.owner.id == owner.id } }
        }
        withExtendedLifetime(removed) {}
    }

    /// Takes out `cell` if it is still its owner's (see `removeCell(of:byOwner:)`).
    func removeCell(_ cell: Cell<Value>) -> [Cell<Value>] {
        let owner = cell.owner
        let byOwner = isCurrent(owner)
        return tables.withLock { tables in
            guard Self.cell(of: owner, in: tables) === cell else { return [] }
            if owner.isThread {
                tables.threads[owner.id] = nil
            } else {
                _ = tables.tasks.remove(at: owner.address) { $0 === cell }
            }
            epoch.add(1, ordering: .relaxed)
            guard byOwner || cell.ownerHasEnded else {
                tables.parked.append(cell)
                return []
            }
            return [cell]
        }
    }

    /// Puts a new cell holding `value` in place of `owner`'s (a thread's), from somewhere other
    /// than the owner, and parks the old one, if any: its owner may be reading it. Returns the new
    /// cell. (A thread that exited meanwhile is told by `OpenScopeTable`, which takes it out again.)
    func replaceCell(of owner: OwnerKey, with value: Value) -> Cell<Value> {
        let cell = OwnedCell(value, owner: owner, record: nil)
        tables.withLock { tables in
            if let old = tables.threads.updateValue(cell, forKey: owner.id) {
                tables.parked.append(old)
            }
            epoch.add(1, ordering: .relaxed)
        }
        return cell
    }

    /// Whether `owner` is the running task or thread.
    func isCurrent(_ owner: OwnerKey) -> Bool {
        if owner.isThread {
            // A .task Local keys by the thread only outside tasks.
            return (!holdsTasks || TaskIdentity.current == nil) && ThreadContext.current.id.serial == owner.id
        }
        guard let current = TaskIdentity.current else { return false }
        return current == owner
    }

    func threadExited(_ thread: ThreadID) {
        let owner = OwnerKey(thread)
        // As a discard: an async scope that started on the thread and ends elsewhere puts nothing back.
        let cells = openScopes.discard(HashedKey(owner)) {
            tables.withLock { tables in
                (tables.threads.removeValue(forKey: thread.serial), Self.takeParked(of: owner, from: &tables))
            }
        }
        withExtendedLifetime(cells) {}
    }
}
