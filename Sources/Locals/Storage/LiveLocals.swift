import Synchronization

/// Every live Local, for snapshots: by id, so that a scope found in a captured chain leads to its
/// Local's operations. Held weakly (through `SnapshotOps`), so that no snapshot keeps a Local
/// alive, and a Local that goes leaves the table.
enum LiveLocals {
    private static let entries = Locked.make(Entries())
    /// How many custom discriminators' Locals are alive: a capture with none skips the lock.
    private static let sessionCount = Atomic<Int>(0)
    /// Changed (under the lock) with every change of `sessionGroups`: a thread keeps the groups
    /// it read last, and reads them again, under the lock, only after a change.
    private static let sessionGroupsVersion = Atomic<UInt>(0)

    private struct Entries {
        var all: [UInt64: SnapshotOps] = [:]
        /// The custom discriminators' Locals that a capture asks for their session, by
        /// discriminator type where it is asked once for all its Locals (see `SessionAsk`), else
        /// one by one; each group's in the order they were made (an array, handed out as it is:
        /// a capture copies nothing).
        var sessionGroups: [SessionGroup] = []
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
    static func add(_ id: UInt64, _ ops: SnapshotOps, isSession: Bool, captured: Bool, askedOnce: SessionAsk? = nil) {
        entries.withLock { entries in
            entries.all[id] = ops
            if isSession {
                guard captured else { return }
                if let askedOnce,
                    let index = entries.sessionGroups.firstIndex(where: {
                        $0.ask?.discriminatorType == askedOnce.discriminatorType
                    })
                {
                    entries.sessionGroups[index].members.append(ops)
                } else {
                    entries.sessionGroups.append(SessionGroup(ask: askedOnce, members: [ops]))
                }
                sessionGroupsVersion.add(1, ordering: .releasing)
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
            } else if let group = entries.sessionGroups.firstIndex(where: { $0.members.contains { $0.localID == id } }) {
                let members = entries.sessionGroups[group].members
                session = members.first { $0.localID == id }
                if members.count == 1 {
                    entries.sessionGroups.remove(at: group)
                } else {
                    entries.sessionGroups[group].members.removeAll { $0.localID == id }
                }
                sessionGroupsVersion.add(1, ordering: .releasing)
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
        let thread = ThreadContext.existing(key: ThreadContext.pthreadKey)
        if let thread, !thread._withUnsafeGuaranteedRef({ $0.parkedParts.isEmpty }) {
            // First, before anything is taken: their deinits are user code.
            thread._withUnsafeGuaranteedRef { $0.releaseParkedParts() }
        }
        var chain = ScopeChain.head
        // Inside a run, with no scope opened since: the captured chain the run stands for, not
        // the run's boundary (so that work that captures in every run, hop after hop, does not
        // build a chain of them).
        // (Tested on the head in place first: binding it to a name retains and releases it.)
        while chain?.localID == 0, let run = chain as? RunBoundary {
            chain = run.parent
            run.noteWalked()
        }
        var parts = SnapshotParts.Builder()
        if let task = TaskIdentity.current {
            take(TaskRegistry.localsListed(by: task) ?? entries.withLock { $0.taskLocals() }, &chain, &parts)
            // Looked at first: the list is retained for `take`, and most threads have none.
            if let thread, !thread._withUnsafeGuaranteedRef({ $0.listedThreadLocals.isEmpty }) {
                take(thread._withUnsafeGuaranteedRef { $0.listedThreadLocals }, &chain, &parts)
            }
        } else {
            let thread = ThreadContext.current
            take(thread.listed, &chain, &parts)
            take(thread.listedThreadLocals, &chain, &parts)
        }
        if sessionCount.load(ordering: .relaxed) > 0 {
            takeSessions(&chain, &parts)
        }
        return (chain, SnapshotParts(parts))
    }

    // `capture`'s steps, on its chain and parts passed in and out: captured by a closure instead,
    // its variables would be checked for exclusive access at run time, on every access.

    /// Takes what the running context holds of each Local of `listed`.
    ///
    /// Each Local's operations are borrowed from the list and the chain is lent unretained: three
    /// reference counts each way per Local (the operations, their closure's context, the chain)
    /// that a plain loop made.
    private static func take(_ listed: [SnapshotOps], _ chain: inout ScopeLink?, _ parts: inout SnapshotParts.Builder) {
        listed.withUnsafeBufferPointer { listed in
            guard let first = listed.baseAddress else { return }
            // An array of class references holds one pointer each, as `Unmanaged` is.
            let base = UnsafeRawPointer(first)
            for index in 0..<listed.count {
                let ops = base.load(fromByteOffset: index &* MemoryLayout<SnapshotOps>.stride, as: Unmanaged<SnapshotOps>.self)
                let lent = chain.map { Unmanaged.passUnretained($0) }
                let (link, data) = ops._withUnsafeGuaranteedRef { $0.capture(lent) }
                if let link {
                    chain = link  // the context's own value, as a scope in front of the chain
                } else if let data {
                    parts.insert(data, of: ops)
                }
            }
        }
    }

    /// Takes the sessions the running context is in, of the custom discriminators' Locals that
    /// a capture asks (those whose key is not carried).
    private static func takeSessions(_ chain: inout ScopeLink?, _ parts: inout SnapshotParts.Builder) {
        // While no run anywhere made a session current, a discriminator asked once for all its
        // Locals that says there is no key means none of them has a session here.
        let noOverrides = SessionOverrides.inProcess.load(ordering: .relaxed) == 0
        func take(_ group: SessionGroup) {
            if noOverrides, let ask = group.ask, !ask.hasKey(ThreadContext.current) {
                return
            }
            Self.take(group.members, &chain, &parts)
        }
        // The groups as this thread kept them: no lock, and nothing retained. (A capture made by
        // a discriminator's `currentKey` in the middle of this one reads them afresh: the kept
        // ones are not replaced while they are gone through.)
        ThreadContext.currentUnmanaged._withUnsafeGuaranteedRef { context in
            guard !context.isTakingSessions else {
                for group in entries.withLock({ $0.sessionGroups }) {
                    take(group)
                }
                return
            }
            let version = sessionGroupsVersion.load(ordering: .acquiring)
            if context.sessionGroupsVersion != version {
                context.keep(SessionGroups(entries.withLock { $0.sessionGroups }), version: version)
            }
            context.isTakingSessions = true
            defer { context.isTakingSessions = false }
            context.sessionGroups._withUnsafeGuaranteedRef { kept in
                for index in kept.groups.indices {
                    if noOverrides, let ask = kept.groups[index].ask, !ask.hasKey(context) {
                        continue
                    }
                    Self.take(kept.groups[index].members, &chain, &parts)
                }
            }
        }
    }
}

/// The session groups as a thread keeps them (see `ThreadContext.sessionGroups`): in an object
/// whose array never changes, so that going through it retains nothing.
final class SessionGroups {
    let groups: [SessionGroup]

    init(_ groups: [SessionGroup]) {
        self.groups = groups
    }
}

/// The Locals of one custom discriminator type that a capture asks once (`ask`), or one Local
/// that it asks itself (no `ask`).
struct SessionGroup {
    let ask: SessionAsk?
    var members: [SnapshotOps]
}

/// How a capture asks a discriminator type with no stored properties, once for all its Locals,
/// whether the running context has a key: every instance of such a type is the same, so it says
/// the same for each of them. Holds a copy of one of them (nothing of any Local).
@usableFromInline
struct SessionAsk: Sendable {
    @usableFromInline let discriminatorType: ObjectIdentifier
    /// Asks on the running thread, whose context is passed in (for the recursion guard).
    @usableFromInline let hasKey: @Sendable (ThreadContext) -> Bool

    @inlinable
    init(discriminatorType: ObjectIdentifier, hasKey: @escaping @Sendable (ThreadContext) -> Bool) {
        self.discriminatorType = discriminatorType
        self.hasKey = hasKey
    }
}
