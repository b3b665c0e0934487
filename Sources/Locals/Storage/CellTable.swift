/// The cells of one Local's tasks, by task address: an open-addressing hash table with linear
/// probing, so that a sweep can walk it a few slots at a time from where the last one stopped.
///
/// At most one cell per address: a task's address is not reused while its cell pins it, and a
/// cell found at a reused address belongs to a task that has ended. Used under `Storage`'s lock.
struct CellTable<Value: Sendable> {
    private var slots: [Cell<Value>?] = Array(repeating: nil, count: CellTable.minimumCapacity)
    private(set) var count = 0
    /// Where the next sweep starts.
    private var cursor = 0

    static var minimumCapacity: Int { 16 }
    /// Fibonacci hashing: spreads the aligned addresses of task objects over the slots.
    private static var multiplier: UInt { UInt(truncatingIfNeeded: 0x9E37_79B9_7F4A_7C15 as UInt64) }

    private var mask: Int { slots.count - 1 }

    private func home(_ address: UInt) -> Int {
        Int(truncatingIfNeeded: ((address >> 4) &* Self.multiplier) >> 16) & mask
    }

    /// The cell at `address`, whoever its task is.
    func cell(at address: UInt) -> Cell<Value>? {
        var index = home(address)
        while let cell = slots[index] {
            if cell.owner.address == address { return cell }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Puts `cell` in, and returns the cell it replaced at the same address, if any.
    mutating func insert(_ cell: Cell<Value>) -> Cell<Value>? {
        if (count + 1) * 2 > slots.count {
            resize(to: slots.count * 2)
        }
        var index = home(cell.owner.address)
        while let existing = slots[index] {
            if existing.owner.address == cell.owner.address {
                slots[index] = cell
                return existing
            }
            index = (index + 1) & mask
        }
        slots[index] = cell
        count += 1
        return nil
    }

    /// Takes out the cell at `address` if `belongs` says it is the one to remove.
    mutating func remove(at address: UInt, if belongs: (Cell<Value>) -> Bool = { _ in true }) -> Cell<Value>? {
        var index = home(address)
        while let cell = slots[index] {
            if cell.owner.address == address {
                guard belongs(cell) else { return nil }
                removeSlot(index)
                shrinkIfSparse()
                return cell
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Looks at up to `budget` cells, from where the last sweep stopped, and takes out those for
    /// which `hasEnded` is true.
    mutating func sweep(budget: Int, hasEnded: (Cell<Value>) -> Bool) -> [Cell<Value>] {
        guard count > 0 else { return [] }
        var removed: [Cell<Value>] = []
        var looked = 0
        var visited = 0
        var index = cursor & mask
        while looked < budget, visited < slots.count {
            if let cell = slots[index] {
                looked += 1
                if hasEnded(cell) {
                    removed.append(cell)
                    removeSlot(index)
                    // A later cell may have moved into this slot: look at it again.
                    continue
                }
            }
            index = (index + 1) & mask
            visited += 1
        }
        cursor = index
        shrinkIfSparse()
        return removed
    }

    /// Every cell, for the Local's release.
    func allCells() -> [Cell<Value>] {
        slots.compactMap { $0 }
    }

    /// Empties slot `index`, moving later cells of the same probe run back (no tombstones).
    private mutating func removeSlot(_ index: Int) {
        var hole = index
        slots[hole] = nil
        count -= 1
        var next = (hole + 1) & mask
        while let cell = slots[next] {
            let wanted = home(cell.owner.address)
            // Move `cell` into the hole if its home is not in the cyclic range (hole, next].
            let inRange = hole <= next ? (wanted > hole && wanted <= next) : (wanted > hole || wanted <= next)
            if !inRange {
                slots[hole] = cell
                slots[next] = nil
                hole = next
            }
            next = (next + 1) & mask
        }
    }

    private mutating func shrinkIfSparse() {
        if slots.count > Self.minimumCapacity * 4, count * 8 < slots.count {
            resize(to: slots.count / 2)
        }
    }

    private mutating func resize(to capacity: Int) {
        let cells = slots.compactMap { $0 }
        slots = Array(repeating: nil, count: capacity)
        count = 0
        cursor = 0
        for cell in cells {
            _ = insert(cell)
        }
    }
}
