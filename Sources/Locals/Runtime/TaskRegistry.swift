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
/// Records live in shards picked by task id, each an `AddressTable` under its own lock; a
/// record's pin (and so its address) and use count are only touched under that lock, so two
/// sweeps never inspect the same pin at once.
enum TaskRegistry {
    /// Made once, and never released: the shards live as long as the process, so that using one
    /// retains nothing.
    private static let shards = (0..<16).map { _ in Unmanaged.passRetained(Shard()) }

    /// One shard's records, under the lock that scopes use too (`LockedBox`): taken and given
    /// back with one atomic read-modify-write where a pthread mutex makes two (every capture
    /// takes one to find the running task's record).
    private final class Shard: LockedBox, @unchecked Sendable {
        // @unchecked: the records are only touched with the lock held.
        @exclusivity(unchecked) var records = AddressTable<TaskRecord>()
    }

    /// Runs `body` with the lock of the shard that keeps the records of task `id`.
    static func withShard<R>(of id: UInt64, _ body: (inout AddressTable<TaskRecord>) -> R) -> R {
        shards[Int(truncatingIfNeeded: id & 15)]._withUnsafeGuaranteedRef { shard in
            shard.lock()
            defer { shard.unlock() }
            return body(&shard.records)
        }
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
        let record = withShard(of: task.id) { records -> TaskRecord in
            if let record = records.entry(at: task.address), record.id == task.id {
                record.users += 1
                return record
            }
            // A record left at this address belongs to a task that has ended, whose last cell is
            // on its way out: the new task takes the place.
            let record = TaskRecord(pin: pin, id: task.id)
            replaced = records.insert(record)
            return record
        }
        // Dropping a pin may destroy the task object, which may release its result (user code).
        withExtendedLifetime((replaced, pin)) {}
        return record
    }

    /// Lists `local` in `record` as a Local with a value of `task`'s own.
    static func list(_ local: SnapshotOps, in record: TaskRecord, for task: UInt64) {
        let forgotten = withShard(of: record.id) { _ in record.touch(local, by: task) }
        withExtendedLifetime(forgotten) {}
    }

    /// The Locals with values of the running task's own, as its record lists them; nil where the
    /// task has no record (the runtime gives no pin, see `TaskRuntime`).
    static func localsListed(by task: TaskIdentity) -> [SnapshotOps]? {
        // Every capture asks this: nothing here is retained (not the task, not the shard, not
        // the record), which would be an atomic operation each way.
        guard let (holder, _) = TaskRuntime.recordHolder(ofCurrentTask: task) else { return nil }
        return withShard(of: holder.id) { records in
            guard let record = records.unretainedEntry(at: holder.address) else { return [] }
            return record._withUnsafeGuaranteedRef { $0.id == holder.id ? $0.locals(touchedBy: task.id) : [] }
        }
    }

    /// Whether `task`'s own record lists `local` as a Local it wrote a value of its own to.
    static func lists(_ local: SnapshotOps, for task: TaskIdentity) -> Bool {
        withShard(of: task.id) { records in
            guard let record = records.entry(at: task.address), record.id == task.id else { return false }
            return record.locals(touchedBy: task.id).contains { $0 === local }
        }
    }

    /// One user of `record` (a cell) is gone: the last one takes the record out of the registry.
    static func release(_ record: TaskRecord) {
        let removed = withShard(of: record.id) { records -> TaskRecord? in
            record.users -= 1
            guard record.users == 0 else { return nil }
            return records.remove(at: record.tableAddress) { $0 === record }
        }
        withExtendedLifetime(removed) {}
    }

    /// Whether the record's task has ended.
    static func hasEnded(_ record: TaskRecord) -> Bool {
        withShard(of: record.id) { _ in TaskPin.taskHasEnded(&record.pin) }
    }
}

/// A heap task's pin, shared by every cell that belongs to the task: 40 bytes, for every task that
/// touches a Local.
final class TaskRecord: @unchecked Sendable, AddressKeyed {
    // @unchecked: `pin` and `users` are touched only under the registry shard's lock.
    @exclusivity(unchecked) var pin: TaskPin
    /// How many cells use this record.
    @exclusivity(unchecked) var users = 1
    /// The pinned task's 64-bit id.
    let id: UInt64
    /// The Locals with values of the task's own (written outside a scope, or copied from one), the
    /// first one apart, and the rest (with those of its `async let` children, which share its
    /// record), for `LocalsSnapshot.capture()`: most tasks list at most one, which then costs no
    /// array. The rest forgets Locals that are gone as it grows.
    @exclusivity(unchecked) var firstTouched: SnapshotOps?
    @exclusivity(unchecked) var moreTouched: [Touch] = []

    struct Touch {
        let task: UInt64
        let local: SnapshotOps
    }

    /// Lists `local` as touched by `task`; returns the entries it forgot (Locals that are gone),
    /// to be released after the lock.
    func touch(_ local: SnapshotOps, by task: UInt64) -> [Touch] {
        if task == id, firstTouched == nil || firstTouched === local {
            firstTouched = local
            return []
        }
        // Listed once per task and Local, however often a reset makes the cell anew.
        if moreTouched.contains(where: { $0.task == task && $0.local === local }) {
            return []
        }
        var forgotten: [Touch] = []
        if moreTouched.count >= 8, moreTouched.count.nonzeroBitCount == 1 {
            // At each power of two: forget the Locals that are gone, and the oldest entries of
            // `async let` children (which share this record) past the last 256 of them, so that a
            // task that runs children in a loop keeps a bounded list. A child whose entry went
            // still runs correctly; only a snapshot it captures misses that value of its own.
            moreTouched.removeAll { touch in
                guard !touch.local.isAlive() else { return false }
                forgotten.append(touch)
                return true
            }
            let children = moreTouched.lazy.filter { $0.task != self.id }.count
            if children > 256 {
                var excess = children - 256
                moreTouched.removeAll { touch in
                    guard excess > 0, touch.task != self.id else { return false }
                    excess -= 1
                    forgotten.append(touch)
                    return true
                }
            }
        }
        moreTouched.append(Touch(task: task, local: local))
        return forgotten
    }

    /// The Locals `task` touched, as listed here.
    func locals(touchedBy task: UInt64) -> [SnapshotOps] {
        var locals: [SnapshotOps] = []
        if moreTouched.isEmpty {
            // The common case (a task that touched one Local, or none), with no capacity reserved:
            // an array of nothing allocates nothing.
            if task == id, let firstTouched {
                locals.append(firstTouched)
            }
            return locals
        }
        locals.reserveCapacity(moreTouched.count + 1)
        if task == id, let firstTouched {
            locals.append(firstTouched)
        }
        for touch in moreTouched where touch.task == task {
            locals.append(touch.local)
        }
        return locals
    }

    init(pin: TaskPin, id: UInt64) {
        self.pin = pin
        self.id = id
    }

    /// The pinned task's address (read under the shard's lock, as the pin is).
    var tableAddress: UInt {
        UInt(bitPattern: Unmanaged.passUnretained(pin).toOpaque())
    }
}
