import Synchronization

/// Every live Local, for snapshots: by id, so that a scope found in a captured chain leads to its
/// Local's operations. Held weakly (through `SnapshotOps`), so that no snapshot keeps a Local
/// alive, and a Local that goes leaves the table.
enum LiveLocals {
    private static let entries = Locked.make(Entries())
    /// How many custom discriminators' Locals are alive: a capture with none skips the lock.
    private static let sessionCount = Atomic<Int>(0)

    private struct Entries {
        var all: [UInt64: SnapshotOps] = [:]
        /// The custom discriminators' Locals, in the order they were made: a snapshot asks each
        /// for its current session (an array, handed out as it is: a capture copies nothing).
        var sessions: [SnapshotOps] = []
        /// The ids of the `.task` Locals among `all`.
        var taskIDs: Set<UInt64> = []
        /// The `.task` Locals, listed once after each change: what a capture takes in a task with
        /// no record (whose list is unknown), handed out as it is.
        var taskLocalsListed: [SnapshotOps]?

        /// Every live `.task` Local (neither a `.thread` nor a custom discriminator's).
        mutating func taskLocals() -> [SnapshotOps] {
            if let listed = taskLocalsListed {
                return listed
            }
            let listed = taskIDs.compactMap { all[$0] }
            taskLocalsListed = listed
            return listed
        }
    }

    /// Adds a live Local: a `.task`, `.thread` or custom discriminator's (`isSession`), which a
    /// capture asks for its session unless its key is carried (not `captured`).
    static func add(_ id: UInt64, _ ops: SnapshotOps, isSession: Bool, captured: Bool) {
        entries.withLock { entries in
            entries.all[id] = ops
            if isSession {
                guard captured else { return }
                entries.sessions.append(ops)
                sessionCount.add(1, ordering: .relaxed)
            } else if !ops.holdsThreadValues {
                entries.taskIDs.insert(id)
                entries.taskLocalsListed = nil
            }
        }
    }

    static func remove(_ id: UInt64) {
        let removed = entries.withLock { entries in
            var session: SnapshotOps?
            if entries.taskIDs.remove(id) != nil {
                entries.taskLocalsListed = nil
            } else if let index = entries.sessions.firstIndex(where: { $0.localID == id }) {
                session = entries.sessions.remove(at: index)
                sessionCount.subtract(1, ordering: .relaxed)
            }
            return (entries.all.removeValue(forKey: id), session)
        }
        withExtendedLifetime(removed) {}
    }

    /// The operations of the Locals `ids`, where they are still alive.
    static func ops(of ids: [UInt64]) -> [SnapshotOps?] {
        entries.withLock { entries in ids.map { entries.all[$0] } }
    }

    /// What the running context holds beyond its scopes, Local by Local, in the order the Locals
    /// were made: of the Locals with values of its own (as its task's record, or its thread,
    /// lists them; with the capturing thread's `.thread` values) and of the custom
    /// discriminators' Locals (whose key is the discriminator's to say). Where the running task
    /// has no record (the runtime gives no pin), of every live Local.
    ///
    /// The lists are of Locals of different kinds (`.task`, `.thread`, custom), each listed once:
    /// taken in turn, not joined, each part put in its Local's place in the order as it comes.
    static func capture() -> (chain: ScopeLink?, parts: SnapshotParts) {
        var chain = ScopeChain.head
        // Inside a run, with no scope opened since: the captured chain the run stands for, not
        // the run's boundary (so that work that captures in every run, hop after hop, does not
        // build a chain of them).
        while let boundary = chain, boundary.localID == 0, let run = boundary as? RunBoundary {
            chain = run.parent
            run.noteWalked()
        }
        var parts = SnapshotParts()
        func take(_ listed: [SnapshotOps]) {
            for ops in listed {
                let (link, data) = ops.capture(chain)
                if let link {
                    chain = link  // the context's own value, as a scope in front of the chain
                } else if let data {
                    parts.insert(data, of: ops)
                }
            }
        }
        if let task = TaskIdentity.current {
            take(TaskRegistry.localsListed(by: task) ?? entries.withLock { $0.taskLocals() })
            if let thread = ThreadContext.existing(key: ThreadContext.pthreadKey) {
                take(thread._withUnsafeGuaranteedRef { $0.listedThreadLocals })
            }
        } else {
            let thread = ThreadContext.current
            take(thread.listed)
            take(thread.listedThreadLocals)
        }
        if sessionCount.load(ordering: .relaxed) > 0 {
            take(entries.withLock { $0.sessions })
        }
        return (chain, parts)
    }
}
