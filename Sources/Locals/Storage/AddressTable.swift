/// An object kept in an `AddressTable`, under the address of the task it belongs to.
protocol AddressKeyed: AnyObject {
    var tableAddress: UInt { get }
}

/// Objects by task address (one Local's cells, the task registry's records): an open-addressing
/// hash table with linear probing, one pointer a slot, so that it costs little per entry and a
/// sweep can walk it a few slots at a time from where the last one stopped.
///
/// At most one entry per address: a task's address is not reused while its entry pins it, and an
/// entry found at a reused address belongs to a task that has ended. Used under a lock.
struct AddressTable<Entry: AddressKeyed> {
    private(set) var slots: [Entry?] = Array(repeating: nil, count: AddressTable.minimumCapacity)
    private(set) var count = 0
    /// Where the next sweep starts.
    private var cursor = 0

    static var minimumCapacity: Int { 16 }
    /// Fibonacci hashing: spreads the aligned addresses of task objects over the slots.
    static var multiplier: UInt { UInt(truncatingIfNeeded: 0x9E37_79B9_7F4A_7C15 as UInt64) }

    var mask: Int { slots.count - 1 }

    func home(_ address: UInt) -> Int {
        Int(truncatingIfNeeded: ((address >> 4) &* Self.multiplier) >> 16) & mask
    }

    /// The entry at `address`, whoever its task is.
    func entry(at address: UInt) -> Entry? {
        var index = home(address)
        while let entry = slots[index] {
            if entry.tableAddress == address { return entry }
            index = (index + 1) & mask
        }
        return nil
    }

    /// `entry(at:)`, not retained: for a caller that uses it under the lock that keeps it in the
    /// table. (An optional class reference is one nullable pointer, as `Unmanaged` is.)
    func unretainedEntry(at address: UInt) -> Unmanaged<Entry>? {
        slots.withUnsafeBufferPointer { slots in
            let base = UnsafeRawPointer(slots.baseAddress.unsafelyUnwrapped)
            var index = home(address)
            while let entry = base.load(fromByteOffset: index &* MemoryLayout<Entry?>.stride, as: Unmanaged<Entry>?.self) {
                if entry._withUnsafeGuaranteedRef({ $0.tableAddress }) == address { return entry }
                index = (index + 1) & mask
            }
            return nil
        }
    }

    /// Puts `entry` in, and returns the entry it replaced at the same address, if any.
    mutating func insert(_ entry: Entry) -> Entry? {
        // Up to 70% full: linear probing stays short, and a slot is 8 bytes.
        if (count + 1) * 10 > slots.count * 7 {
            resize(to: slots.count * 2)
        }
        var index = home(entry.tableAddress)
        while let existing = slots[index] {
            if existing.tableAddress == entry.tableAddress {
                slots[index] = entry
                return existing
            }
            index = (index + 1) & mask
        }
        slots[index] = entry
        count += 1
        return nil
    }

    /// Takes out the entry at `address` if `belongs` says it is the one to remove.
    mutating func remove(at address: UInt, if belongs: (Entry) -> Bool = { _ in true }) -> Entry? {
        var index = home(address)
        while let entry = slots[index] {
            if entry.tableAddress == address {
                guard belongs(entry) else { return nil }
                removeSlot(index)
                shrinkIfSparse()
                return entry
            }
            index = (index + 1) & mask
        }
        return nil
    }

    /// Looks at up to `budget` entries, from where the last sweep stopped, and takes out those for
    /// which `hasEnded` is true.
    mutating func sweep(budget: Int, hasEnded: (Entry) -> Bool) -> [Entry] {
        guard count > 0 else { return [] }
        var removed: [Entry] = []
        var looked = 0
        var visited = 0
        var index = cursor & mask
        while looked < budget, visited < slots.count {
            if let entry = slots[index] {
                looked += 1
                if hasEnded(entry) {
                    removed.append(entry)
                    removeSlot(index)
                    // A later entry may have moved into this slot: look at it again.
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

    /// Every entry, for the Local's release.
    func all() -> [Entry] {
        slots.compactMap { $0 }
    }

    /// Empties slot `index`, moving later entries of the same probe run back (no tombstones).
    private mutating func removeSlot(_ index: Int) {
        var hole = index
        slots[hole] = nil
        count -= 1
        var next = (hole + 1) & mask
        while let entry = slots[next] {
            let wanted = home(entry.tableAddress)
            // Move `entry` into the hole if its home is not in the cyclic range (hole, next].
            let inRange = hole <= next ? (wanted > hole && wanted <= next) : (wanted > hole || wanted <= next)
            if !inRange {
                slots[hole] = entry
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
        let entries = slots.compactMap { $0 }
        slots = Array(repeating: nil, count: capacity)
        count = 0
        cursor = 0
        for entry in entries {
            _ = insert(entry)
        }
    }
}
