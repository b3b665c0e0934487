extension TaskDiscriminator {
    /// What swift-locals confirmed about the Swift runtime the process runs on.
    ///
    /// Swift has no public task identity that is never reused and no hook at task end, so `.task`
    /// Locals ask the concurrency runtime through the entry points it exports, and confirm each
    /// fact once per process, at first use, by creating tasks of every kind on a thread of their
    /// own. Where a fact cannot be confirmed, the library falls back to behavior that is still
    /// correct (values may then be held longer; see each check), prints one line to standard error
    /// saying which check failed on which runtime, and reports it here. It never reads or keeps a
    /// value under a wrong identity.
    ///
    /// ```swift
    /// let support = TaskDiscriminator.support
    /// print(support)                      // one line per check
    /// assert(support.isComplete)         // in a test: everything was confirmed
    /// ```
    ///
    /// Reading it runs the checks if no task has used a `.task` Local yet (well under a
    /// millisecond, once). See <doc:LifetimesAndGuarantees> for what each fallback does.
    public static var support: Support {
        Support(TaskRuntime.facts)
    }

    /// The outcome of the runtime checks `.task` Locals make at first use.
    public struct Support: Sendable, CustomStringConvertible {
        /// The outcome of one check.
        public enum Check: Sendable, Hashable, CustomStringConvertible {
            /// The runtime answered as expected: the library relies on this fact.
            case confirmed
            /// The runtime did not confirm this fact, for the reason given: the library uses
            /// the fallback instead.
            case failed(reason: String)

            /// Whether the check was confirmed.
            public var isConfirmed: Bool { self == .confirmed }

            public var description: String {
                switch self {
                case .confirmed: "confirmed"
                case .failed(let reason): "failed: \(reason)"
                }
            }
        }

        /// The runtime the checks ran against: its published layout version and task size, and
        /// the platform.
        public let runtime: String
        /// Whether `swift_task_getJobTaskId` gives every task a 64-bit id of its own. Without it,
        /// `.task` Locals stop at their first use in a task, with a message naming the runtime.
        public let taskIdentity: Check
        /// Whether the library can tell when a task has ended (by job flags and a pin on the task
        /// object). Without it, nothing is pinned: a task's value is released when a later task
        /// starts at the same address, or with the scope it was made in.
        public let taskEnd: Check
        /// Whether an `async let` child's parent can be found (the word after the runtime's task
        /// object). Without it, an `async let` child's value is released with the scope it was
        /// made in, or when a later task starts at the same address.
        public let asyncLetParent: Check

        init(_ facts: TaskRuntime.Facts) {
            func check(_ fact: TaskRuntime.Fact) -> Check {
                facts.failures[fact].map { .failed(reason: $0) } ?? .confirmed
            }
            runtime = facts.runtime
            taskIdentity = check(.taskIdentity)
            taskEnd = check(.taskEnd)
            asyncLetParent = check(.asyncLetParent)
        }

        /// Whether every check was confirmed: values are released as promptly as documented.
        public var isComplete: Bool {
            taskIdentity.isConfirmed && taskEnd.isConfirmed && asyncLetParent.isConfirmed
        }

        public var description: String {
            """
            swift-locals on \(runtime):
              64-bit task ids: \(taskIdentity)
              task end detection: \(taskEnd)
              async let parent: \(asyncLetParent)
            """
        }
    }
}
