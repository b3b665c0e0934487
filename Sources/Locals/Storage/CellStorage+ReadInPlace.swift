// Reads served in place inside a synchronous snapshot run: where the captured scope itself holds
// what the run's view would read, a read goes through a cell of the run's pointed at that scope,
// and nothing of the runner's is made, put in place or taken away (see Internals.md).

extension CellStorage {
    /// For a read past the cache inside a synchronous snapshot run: the run's cell for this
    /// Local, pointed at the captured scope to read in place, or nil where the read needs the
    /// running context's own cell (see `scopeToPeek`).
    @inlinable
    @inline(__always)
    func peekCell() -> Unmanaged<Cell<Value>>? {
        guard let (link, kept, run) = scopeToPeek() else { return nil }
        let scope = Unmanaged<ScopeFrame<Value>>.fromOpaque(link.toOpaque())
        guard let route = scope._withUnsafeGuaranteedRef({ $0.peekRoute }) else { return nil }
        let cell =
            if let kept {
                Unmanaged<Cell<Value>>.fromOpaque(kept.toOpaque())
            } else {
                keepPeekCell(scope._withUnsafeGuaranteedRef { Cell.reading($0, by: route) }, in: run)
            }
        cell._withUnsafeGuaranteedRef { cell in scope._withUnsafeGuaranteedRef { cell.point(to: route, $0) } }
        return cell
    }

    /// Inside a synchronous snapshot run of the running context's own, the captured scope of this
    /// Local that a read may be served from in place, without the run's view (see
    /// `ActiveRun.scopeToPeek` and `ScopeFrame.peekRoute`), with the cell the run keeps for such
    /// reads of this Local, if any, and the run (opaque: for `keepPeekCell`). A callback that only
    /// reads a Local pays neither for putting the view in place nor for taking it away. Nil
    /// outside such runs, for `.thread` Locals, and for the Local's own initializer (whose touch
    /// of its own key stops in `resolveCell`).
    @usableFromInline
    func scopeToPeek() -> (scope: Unmanaged<ScopeLink>, kept: Unmanaged<AnyObject>?, run: UnsafeMutableRawPointer)? {
        guard holdsTasks, let context = ThreadContext.existing(key: pthreadKey) else { return nil }
        return context._withUnsafeGuaranteedRef { context in
            var next = context.activeRunLink
            while let link = next {
                let found = link._withUnsafeGuaranteedRef { run -> ActiveRun.Peek in
                    // The run's owner is running this (a task's address, or none for a thread's).
                    guard run.owner.address == TaskIdentity.currentAddress,
                        !context.isInitializing(ObjectIdentifier(facts), run.owner)
                    else { return .cell }
                    return run.peek(localID)
                }
                switch found {
                case .scope(let scope, let kept):
                    // A runner that a first touch would give a copy of a scope outside the run
                    // (a `.copy` child with no cell yet) makes that copy at its first access in
                    // the run, as outside runs: so it gets the view, which makes the cell. A run
                    // with nothing outside it (a thread's) has no such scope to walk to.
                    if link._withUnsafeGuaranteedRef({ $0.outsideLink != nil }), copiesAtFirstTouch(outside: link) {
                        return nil
                    }
                    return (scope, kept, link.toOpaque())
                case .cell:
                    return nil
                case .outside:
                    next = link._withUnsafeGuaranteedRef { $0.previous }
                }
            }
            return nil
        }
    }

    /// Keeps `cell` in `run` (from `scopeToPeek`) for this Local's reads in place; returns it,
    /// not retained (the run holds it).
    @usableFromInline
    func keepPeekCell(_ cell: Cell<Value>, in run: UnsafeMutableRawPointer) -> Unmanaged<Cell<Value>> {
        Unmanaged<ActiveRun>.fromOpaque(run)._withUnsafeGuaranteedRef { $0.keep(cell, of: localID) }
        return Unmanaged.passUnretained(cell)
    }

    /// Whether the runner of `run` (the running context), touching this Local for the first time,
    /// would make its cell as a copy of a `.copy` scope outside the run that another context owns:
    /// the scope a new cell starts from (`scopeForNewCell`), found from the run's `outside`. Such a
    /// copy is taken at the first touch, so a read in place (which makes no cell) would move it.
    func copiesAtFirstTouch(outside run: Unmanaged<ActiveRun>) -> Bool {
        run._withUnsafeGuaranteedRef { run in
            let owner = run.owner
            var link = run.outside
            while let current = link {
                if current.localID == localID {
                    let frame = unsafeDowncast(current, to: ScopeFrame<Value>.self)
                    return frame.inheritance == .copy && frame.owner != owner
                }
                guard current.localID == 0, let boundary = current as? RunBoundary else {
                    link = current.parent
                    continue
                }
                // As `scope(for:newCell:)` walks, from outside the innermost run of the owner.
                if boundary.isRun(of: owner),
                    boundary.isLazy || boundary.isEndingRun || ScopeChain.find(localID, from: boundary.parent) == nil
                {
                    link = boundary.outside
                } else {
                    link = boundary.parent
                }
                boundary.noteWalked()
            }
            return false
        }
    }
}
