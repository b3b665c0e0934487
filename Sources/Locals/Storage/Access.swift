/// One access to a task's or thread's cell, by the cell's route: the only code that reads or
/// writes a value where it lives. Inlined into the caller, so that a literal key path folds to a
/// field access: the key path is only ever applied here, never passed on as a value or captured
/// by a closure given to code out of line, which would make the caller build the key path object
/// (a shared, reference-counted object) on every access. Only an `.overlay` child's write needs
/// the object, to tell a stored part from an element.
@usableFromInline
enum Access {
    /// Reads one part of the value the cell's owner sees.
    @inlinable
    @inline(__always)
    static func read<Value, T>(_ cell: Cell<Value>, _ keyPath: KeyPath<Value, T>) -> T {
        switch cell.route {
        case .own:
            return cell.own.value[keyPath: keyPath]
        case .scope:
            // The owner's own scope: only the owner writes it, so it reads without the lock.
            return cell.withScope { $0.value[keyPath: keyPath] }
        case .sharedScope:
            return cell.withScope { frame in
                frame.lock()
                defer { frame.unlock() }
                return frame.value[keyPath: keyPath]
            }
        case .overlay:
            return cell.withScope { frame in
                let overlay = cell.overlay.unsafelyUnwrapped
                let view = overlay.beginRead(frame)
                defer { overlay.endRead(frame) }
                return view?.pointee[keyPath: keyPath] ?? frame.value[keyPath: keyPath]
            }
        }
    }

    /// The whole value the cell's owner sees. (No key path: in code that is not specialized for
    /// the value type, `\Value.self` would be built at run time, demangling type names, each call.)
    @inlinable
    static func load<Value>(_ cell: Cell<Value>) -> Value {
        switch cell.route {
        case .own:
            return cell.own.value
        case .scope:
            return cell.withScope { $0.value }
        case .sharedScope:
            return cell.withScope { $0.loadValue() }
        case .overlay:
            return cell.withScope { frame in
                let overlay = cell.overlay.unsafelyUnwrapped
                let view = overlay.beginRead(frame)
                defer { overlay.endRead(frame) }
                return view?.pointee ?? frame.value
            }
        }
    }

    /// Replaces the whole value the cell's owner sees, and hands back the value it replaced, to be
    /// released by the caller once the cell is no longer borrowed. (No key path: see `load`.) An
    /// `.overlay` child keeps the new value as its own and stops reading through.
    @inlinable
    static func store<Value>(_ cell: Cell<Value>, _ newValue: Value) -> Value? {
        var replaced = newValue
        switch cell.route {
        case .own:
            cell.valueWillChange()
            swap(&replaced, &cell.own.value)
        case .scope, .sharedScope:
            cell.withScope { frame in
                frame.lock()
                swap(&replaced, &frame.value)
                frame.version &+= 1
                frame.unlock()
            }
        case .overlay:
            cell.freeze(newValue)
            return nil
        }
        return replaced
    }

    /// Writes one part of the value the cell's owner sees, and hands back what it replaced, to be
    /// released by the caller once the cell is no longer borrowed: its deinit may use this very
    /// Local, even reset the key (which frees the cell).
    @inlinable
    @inline(__always)
    static func write<Value, T>(_ cell: Cell<Value>, _ keyPath: WritableKeyPath<Value, T>, _ newValue: T) -> T? {
        switch cell.route {
        case .own:
            cell.valueWillChange()
            let own = cell.own
            let replaced = own.value[keyPath: keyPath]
            own.value[keyPath: keyPath] = newValue
            cell.valueDidChange(isHeld: false)  // a computed setter may have captured
            return replaced
        case .scope, .sharedScope:
            // Children may be copying or reading through the scope's value: write under its lock.
            return cell.withScope { frame in
                frame.lock()
                let replaced = frame.value[keyPath: keyPath]
                frame.value[keyPath: keyPath] = newValue
                frame.version &+= 1
                frame.unlock()
                return replaced
            }
        case .overlay:
            // The key path is only applied here, never passed on: a literal one folds, both into
            // its offset (a constant) and into the projection below, so that the caller never
            // builds the key path object, on this path or any other.
            if let offset = MemoryLayout<Value>.offset(of: keyPath), T.self != Value.self {
                // A stored part, not the whole value (`\.self` has offset 0 and the whole size).
                overlayRecord(cell, offset: offset, newValue)
            } else {
                var merged = cell.overlaid()
                merged[keyPath: keyPath] = newValue
                cell.freeze(merged)
            }
            return nil
        }
    }

    /// Reads, changes and writes back the value the cell's owner sees, in one atomic step. The
    /// caller holds `cell` strongly: `body` is user code, and may reset this very key.
    @inlinable
    static func update<Value, R, E: Error>(_ cell: Cell<Value>, _ body: (inout Value) throws(E) -> R) throws(E) -> R {
        switch cell.route {
        case .own:
            cell.valueWillChange()
            defer { cell.valueDidChange(isHeld: true) }  // the body may have captured
            return try body(&cell.own.value)
        case .scope, .sharedScope:
            // Held strongly: the body is user code, and may reset the key, which releases a frame
            // that only the cell holds (an `.overlay` child's frozen copy).
            let frame = cell.scope.unsafelyUnwrapped
            return try frame.mutate(body)
        case .overlay:
            return try overlayUpdate(cell, body)
        }
    }

    /// An `.overlay` child's `update`: a change to the whole value, so the child stops reading
    /// through afterwards.
    @usableFromInline
    static func overlayUpdate<Value, R, E: Error>(
        _ cell: Cell<Value>, _ body: (inout Value) throws(E) -> R
    ) throws(E) -> R {
        var merged = cell.overlaid()
        let result = try body(&merged)
        cell.freeze(merged)
        return result
    }

    /// An `.overlay` child's write to a stored part of the value (at `offset`): it goes into the
    /// child's layer, on top of the scope's live value. Anything else (the whole value, a
    /// subscript such as `\.list[1]`, a force-unwrap, a computed property) could trap if replayed
    /// on the live value after the owner changed it, so `write` applies it to the child's view
    /// instead, and the child keeps that view as its own value from then on.
    @usableFromInline
    static func overlayRecord<Value, T>(_ cell: Cell<Value>, offset: Int, _ newValue: T) {
        let overlay = cell.overlay.unsafelyUnwrapped
        overlay.layer.record(offset: offset, newValue)
        overlay.layerChanged()
    }
}
