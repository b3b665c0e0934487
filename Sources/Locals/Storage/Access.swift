/// One access to a task's or thread's cell, by the cell's route: the only code that reads or
/// writes a value where it lives. Inlined into the caller, so that a literal key path folds to a
/// field access, except for the `.overlay` route, which is out of line.
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
            return cell.scope.unsafelyUnwrapped.value[keyPath: keyPath]
        case .sharedScope:
            let frame = cell.scope.unsafelyUnwrapped
            frame.lock()
            defer { frame.unlock() }
            return frame.value[keyPath: keyPath]
        case .overlay:
            return overlayRead(cell, keyPath)
        }
    }

    /// The whole value the cell's owner sees.
    @inlinable
    @inline(__always)
    static func load<Value>(_ cell: Cell<Value>) -> Value {
        read(cell, \Value.self)
    }

    /// Writes one part of the value the cell's owner sees, and hands back what it replaced, to be
    /// released by the caller once the cell is no longer borrowed: its deinit may use this very
    /// Local, even reset the key (which frees the cell).
    @inlinable
    @inline(__always)
    static func write<Value, T>(_ cell: Cell<Value>, _ keyPath: WritableKeyPath<Value, T>, _ newValue: T) -> T? {
        switch cell.route {
        case .own:
            let own = cell.own
            let replaced = own.value[keyPath: keyPath]
            own.value[keyPath: keyPath] = newValue
            return replaced
        case .scope, .sharedScope:
            // Children may be copying or reading through the scope's value: write under its lock.
            let frame = cell.scope.unsafelyUnwrapped
            frame.lock()
            let replaced = frame.value[keyPath: keyPath]
            frame.value[keyPath: keyPath] = newValue
            frame.unlock()
            return replaced
        case .overlay:
            overlayWrite(cell, keyPath, newValue)
            return nil
        }
    }

    /// Reads, changes and writes back the value the cell's owner sees, in one atomic step. The
    /// caller holds `cell` strongly: `body` is user code, and may reset this very key.
    @inlinable
    static func update<Value, R, E: Error>(_ cell: Cell<Value>, _ body: (inout Value) throws(E) -> R) throws(E) -> R {
        switch cell.route {
        case .own:
            return try body(&cell.own.value)
        case .scope, .sharedScope:
            return try cell.scope.unsafelyUnwrapped.mutate(body)
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

    /// An `.overlay` child's read: a part the child has not written comes from the scope's live
    /// value, under its lock, with no copy; anything else from the merged view.
    @usableFromInline
    static func overlayRead<Value, T>(_ cell: Cell<Value>, _ keyPath: KeyPath<Value, T>) -> T {
        if let layer = (cell as? OverlayCell<Value>)?.layer, !layer.isEmpty {
            let untouched = MemoryLayout<Value>.offset(of: keyPath).map {
                !layer.overlaps(offset: $0, size: MemoryLayout<T>.size)
            }
            if untouched != true {
                return cell.overlaid()[keyPath: keyPath]
            }
        }
        let frame = cell.scope.unsafelyUnwrapped
        frame.lock()
        defer { frame.unlock() }
        return frame.value[keyPath: keyPath]
    }

    /// An `.overlay` child's write. A stored part of the value goes into the child's layer, on top
    /// of the scope's live value. Anything else (the whole value, a subscript such as `\.list[1]`,
    /// a force-unwrap, a computed property) could trap if replayed on the live value after the
    /// owner changed it, so it is applied to the child's view now, and the child keeps that view
    /// as its own value from then on.
    @usableFromInline
    static func overlayWrite<Value, T>(_ cell: Cell<Value>, _ keyPath: WritableKeyPath<Value, T>, _ newValue: T) {
        if keyPath != \Value.self as AnyKeyPath, let offset = MemoryLayout<Value>.offset(of: keyPath) {
            unsafeDowncast(cell, to: OverlayCell<Value>.self).layer.record(keyPath, offset: offset, newValue)
            return
        }
        var merged = cell.overlaid()
        merged[keyPath: keyPath] = newValue
        cell.freeze(merged)
    }
}
