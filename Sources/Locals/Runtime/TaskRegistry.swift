/// The one pin per running heap task, shared by the cells of every Local the task touches.
///
/// A pinned task has ended exactly when the pin is the only reference left to it. That test only
/// works if there is a single pin: with one pin per Local, a task that touched two Locals would
/// never look ended to either. So cells hold a ``TaskRecord``, and the registry hands out one
/// record per task. Uniqueness is checked only under the registry's lock, so two sweeps never
/// inspect the same pin at once.
enum TaskRegistry {
    private struct State {
        var records: [UInt: TaskRecord] = [:]
        var sweepAt = 64
    }

    private static let state = Locked.make(State())

    /// The record that bounds the running task's lifetime, made on its first request: the task's
    /// own for a heap task; for an `async let` child (which must not be pinned) its nearest heap
    /// ancestor's; nil where the runtime gives no pin (see `TaskRuntime`).
    static func recordForCurrentTask(_ task: TaskIdentity) -> TaskRecord? {
        switch TaskRuntime.lifetimeOfCurrentTask(task) {
        case .pinned(let pin): record(for: task, pin: pin)
        case .ancestor(let ancestor, let pin): record(for: ancestor, pin: pin)
        case .unpinned: nil
        }
    }

    private static func record(for task: TaskIdentity, pin: TaskPin) -> TaskRecord {
        var released: [TaskRecord] = []
        let record = state.withLock { state -> TaskRecord in
            if let record = state.records[task.address], record.id == task.id {
                return record
            }
            let record = TaskRecord(pin: pin, id: task.id)
            if let stale = state.records.updateValue(record, forKey: task.address) {
                released.append(stale)
            }
            if state.records.count >= state.sweepAt {
                for (address, record) in state.records where TaskPin.taskHasEnded(&record.pin) {
                    released.append(record)
                    state.records[address] = nil
                }
                state.sweepAt = max(64, state.records.count * 2)
            }
            return record
        }
        // Dropping the last pin destroys the task object, which may release its result (user code).
        withExtendedLifetime((released, pin)) {}
        return record
    }

    /// Whether each record's task has ended.
    static func haveEnded(_ records: [TaskRecord]) -> [Bool] {
        state.withLock { _ in records.map { TaskPin.taskHasEnded(&$0.pin) } }
    }
}

/// A heap task's pin, shared by every cell that belongs to the task.
final class TaskRecord: @unchecked Sendable {
    // @unchecked: `pin` is inspected only under TaskRegistry's lock and otherwise never touched.
    @exclusivity(unchecked) var pin: TaskPin
    /// The pinned task's 64-bit id.
    let id: UInt64

    init(pin: TaskPin, id: UInt64) {
        self.pin = pin
        self.id = id
    }
}
