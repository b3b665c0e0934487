/// The one pin per running heap task, shared by the cells of every Local the task touches, and
/// held only as long as some cell uses it.
///
/// A pinned task has ended exactly when the pin is the only reference left to it. That test only
/// works if there is a single pin: with one pin per Local, a task that touched two Locals would
/// never look ended to either. So cells hold a ``TaskRecord``, and the registry hands out one
/// record per task. The registry counts a record's cells: when the last one goes (its Local swept
/// it, discarded it, or was itself released), the record leaves the registry and the pin is
/// dropped, so nothing of a task outlives the storage that used it.
///
/// Records live in shards picked by task address, each with its own lock; uniqueness is checked
/// only under the shard's lock, so two sweeps never inspect the same pin at once.
enum TaskRegistry {
    private static let shards = (0..<16).map { _ in Locked.make([UInt: TaskRecord]()) }

    static func shard(of address: UInt) -> Locked<[UInt: TaskRecord]> {
        shards[Int((address >> 6) & 15)]
    }

    /// The record that bounds the running task's lifetime, with one more user: the task's own
    /// for a heap task; for an `async let` child (which must not be pinned) its nearest heap
    /// ancestor's; nil where the runtime gives no pin (see `TaskRuntime`).
    static func adoptRecordForCurrentTask(_ task: TaskIdentity) -> TaskRecord? {
        switch TaskRuntime.lifetimeOfCurrentTask(task) {
        case .pinned(let pin): adopt(task, pin: pin)
        case .ancestor(let ancestor, let pin): adopt(ancestor, pin: pin)
        case .unpinned: nil
        }
    }

    private static func adopt(_ task: TaskIdentity, pin: TaskPin) -> TaskRecord {
        var replaced: TaskRecord?
        let record = shard(of: task.address).withLock { records -> TaskRecord in
            if let record = records[task.address], record.id == task.id {
                record.users += 1
                return record
            }
            // A record left at this address has no users yet being counted down, or belongs to
            // an ended task whose last cell is on its way out: the new task takes the place.
            let record = TaskRecord(pin: pin, id: task.id, address: task.address)
            replaced = records.updateValue(record, forKey: task.address)
            return record
        }
        // Dropping a pin may destroy the task object, which may release its result (user code).
        withExtendedLifetime((replaced, pin)) {}
        return record
    }

    /// One user of `record` (a cell) is gone: the last one takes the record out of the registry.
    static func release(_ record: TaskRecord) {
        let removed = shard(of: record.address).withLock { records -> TaskRecord? in
            record.users -= 1
            guard record.users == 0, records[record.address] === record else { return nil }
            return records.removeValue(forKey: record.address)
        }
        withExtendedLifetime(removed) {}
    }

    /// Whether the record's task has ended.
    static func hasEnded(_ record: TaskRecord) -> Bool {
        shard(of: record.address).withLock { _ in TaskPin.taskHasEnded(&record.pin) }
    }
}

/// A heap task's pin, shared by every cell that belongs to the task.
final class TaskRecord: @unchecked Sendable {
    // @unchecked: `pin` and `users` are touched only under the registry shard's lock.
    @exclusivity(unchecked) var pin: TaskPin
    /// How many cells use this record.
    @exclusivity(unchecked) var users = 1
    /// The pinned task's 64-bit id and address.
    let id: UInt64
    let address: UInt

    init(pin: TaskPin, id: UInt64, address: UInt) {
        self.pin = pin
        self.id = id
        self.address = address
    }
}
