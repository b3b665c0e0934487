import Synchronization

// A `.task` or `.thread` Local's first touch by a task or thread: its cell, made from the scope the
// context sees and the scope's policy; the owner's list of Locals with values of its own, which
// snapshots copy; and the initializer, run with no lock held.

extension CellStorage {
    // MARK: First touch

    /// Makes the running context's cell on its first touch: its value, and its route, from the
    /// scope the running task sees (if any) and its policy. Runs the initializer, with no lock held.
    /// Also returns whether the cell's value is one the initializer just made.
    func makeCell(for owner: OwnerKey, context: ThreadContext) -> (Cell<Value>, Bool) {
        let task: TaskIdentity? = owner.isThread ? nil : owner
        let record = task.flatMap(TaskRegistry.adoptRecordForCurrentTask)
        let (frame, inOwnRun) = holdsTasks ? scopeForNewCell(for: owner) : (nil, false)
        let cell: Cell<Value>
        var keptBy: ScopeFrame<Value>?
        var initial = false
        if let frame, frame.owner == owner {
            // The owner's cell was dropped (by `discard(key:)` from elsewhere) inside its own
            // scope: a cell with no value of its own until the scope closes (see `restore`).
            cell = Cell(owner: owner, record: record, route: frame.ownerRoute, scope: frame)
            cell.isPlaceholder = true
        } else if let frame {
            switch inherited(from: frame, by: owner) {
            case .value(let value, let copied):
                cell = OwnedCell(value, owner: owner, record: record)
                if copied {
                    list(cell)  // a copy is the child's own value: snapshots take it
                } else {
                    initial = true
                }
            case .route(let route, let overlay):
                cell = Cell(owner: owner, record: record, route: route, scope: frame)
                cell.overlay = overlay
            }
            // A task with no pin is bounded by the scope it inherited, which outlives it; not by
            // a snapshot's scope that it runs, which may go first.
            if task != nil, record == nil, !inOwnRun {
                keptBy = frame
            }
        } else {
            cell = OwnedCell(facts.makeInitialValue(for: owner), owner: owner, record: record)
            initial = true
            #if DEBUG
            if holdsTasks {
                diagnoseFirstTouchWithoutScope(cell, task, context)
            }
            #endif
        }
        var garbage: [Cell<Value>] = []
        tables.withLock { tables in
            if owner.isThread {
                if let stale = tables.threads.updateValue(cell, forKey: owner.id) {
                    garbage.append(stale)
                }
            } else if let stale = tables.tasks.insert(cell) {
                // A task that ended at this address (tasks with no pin do not hold theirs).
                garbage.append(stale)
            }
            if !tables.parked.isEmpty {
                garbage += Self.takeParked(of: owner, from: &tables)
                // A task with no pin that was parked at this address has ended: its address is
                // another task's now.
                tables.parked.removeAll { cell in
                    guard !owner.isThread, cell.owner.address == owner.address else { return false }
                    garbage.append(cell)
                    return true
                }
                garbage += Self.sweepParked(&tables)
            }
            garbage += tables.tasks.sweep(budget: Self.sweepBudget) { $0.ownerHasEnded }
        }
        keptBy?.keep(owner, in: self)
        if owner.isThread {
            context.observeExit(by: self)
        }
        withExtendedLifetime(garbage) {}
        return (cell, initial)
    }

    /// What a context created inside `frame`'s scope sees of this Local, by the scope's policy:
    /// a value of its own (a copy of the scope's value for `.copy`, the initial value for
    /// `.fresh`), or a route into the scope (`.shared`, `.overlay`). The one place the policy is
    /// decided: for a child task's first touch (`makeCell`) and for a snapshot's run, whose
    /// running context sees a captured scope as a child created at the capture point would
    /// (`enter(view:on:orGiveUp:)`).
    @inlinable
    @inline(__always)
    func inherited(from frame: ScopeFrame<Value>, by owner: OwnerKey) -> Inherited {
        switch frame.inheritance {
        case .copy: .value(frame.loadValue(), copied: true)
        case .fresh: .value(facts.makeInitialValue(for: owner), copied: false)
        case .shared: .route(.sharedScope, nil)
        case .overlay: .route(.overlay, OverlayState())
        }
    }

    /// What `inherited(from:by:)` decided.
    @usableFromInline
    enum Inherited {
        /// A value of the context's own; `copied` if it is a copy of the scope's value.
        case value(Value, copied: Bool)
        /// Accesses go into the scope by `route`, with an `.overlay` child's state.
        case route(Route, OverlayState<Value>?)
    }

    #if DEBUG
    /// Where the running context's first touch of this `.task` Local found no scope (see
    /// `Diagnostics`): outside any task (and outside a snapshot's run), warns now; in a child task
    /// whose parent wrote a value of its own, marks `cell` for the warning at its first read.
    func diagnoseFirstTouchWithoutScope(_ cell: Cell<Value>, _ task: TaskIdentity?, _ context: ThreadContext) {
        guard let task else {
            if context.activeRun == nil {
                Diagnostics.warn(.touchedOutsideTask, local: localID) {
                    Diagnostics.touchedOutsideTask(facts.description, thread: context.id)
                }
            }
            return
        }
        if let ops, let parent = TaskRuntime.parentOfCurrentTask(task), TaskRegistry.lists(ops, for: parent) {
            cell.missedParentValue = true
        }
    }

    /// A read of `cell` by its owner: the first after a first touch that missed a parent's value
    /// warns (see `diagnoseFirstTouchWithoutScope`).
    @inlinable
    @inline(__always)
    func noteRead(_ cell: Cell<Value>) {
        if _slowPath(cell.missedParentValue) {
            cell.missedParentValue = false
            Diagnostics.warnChildMissedParentValue(localID, facts.description)
        }
    }
    #endif

    /// Notes a write by `cell`'s owner: the first one outside a scope lists this Local among the
    /// owner's Locals with values of its own, which a snapshot copies.
    @inlinable
    @inline(__always)
    func noteWrite(_ cell: Cell<Value>) {
        if _slowPath(!cell.isListed) {
            noteFirstWrite(cell)
        }
    }

    /// A write to a cell not listed yet: lists it if the value written is the owner's own (its
    /// own value, an `.overlay` child's layer, or a synchronous snapshot run's view).
    @usableFromInline
    @inline(never)
    func noteFirstWrite(_ cell: Cell<Value>) {
        #if DEBUG
        cell.missedParentValue = false  // the child sets a value of its own: nothing missed
        #endif
        switch cell.route {
        case .own, .overlay:
            list(cell)
        case .scope where cell.scope.unsafelyUnwrapped.isRunView:
            list(cell)
        case .scope, .sharedScope:
            break
        }
    }

    /// Lists this Local among the Locals with values of `cell`'s owner's own (see `Cell.isListed`):
    /// in its task's record, or its thread's context. Called by the owner.
    @inline(never)
    func list(_ cell: Cell<Value>) {
        cell.isListed = true
        guard let ops else { return }
        if cell.owner.isThread {
            ThreadContext.current.list(ops)
        } else if let record = cell.record {
            TaskRegistry.list(ops, in: record, for: cell.owner.id)
        }
    }

    /// Looks at a few parked cells, from where the last look stopped, and takes out those whose
    /// owner task has ended.
    static func sweepParked(_ tables: inout Tables) -> [Cell<Value>] {
        var ended: [Cell<Value>] = []
        var looked = 0
        while looked < sweepBudget, !tables.parked.isEmpty {
            let index = tables.parkedCursor % tables.parked.count
            if tables.parked[index].ownerHasEnded {
                ended.append(tables.parked.remove(at: index))
            } else {
                tables.parkedCursor = index + 1
            }
            looked += 1
        }
        return ended
    }
}
