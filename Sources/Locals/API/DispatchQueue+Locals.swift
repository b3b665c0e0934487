public import Dispatch

extension DispatchQueue {
    /// Submits `work` to run asynchronously under a ``LocalsSnapshot`` taken now, at submission:
    /// the block reads the submitting task's (or thread's) Locals, not those of whatever work ran
    /// on the queue's thread before it.
    ///
    /// ```swift
    /// await request.withValue(\.requestID, id) {
    ///     queue.asyncWithLocals { log("\(request.requestID)") }   // the request's id
    /// }
    /// ```
    ///
    /// A plain `queue.async` block runs outside any task, where a `.task` Local keys values by the
    /// thread: two unrelated blocks on one worker thread share a value, and neither sees the
    /// submitter's.
    public func asyncWithLocals(
        group: DispatchGroup? = nil,
        qos: DispatchQoS = .unspecified,
        flags: DispatchWorkItemFlags = [],
        execute work: @escaping @Sendable @convention(block) () -> Void
    ) {
        let snapshot = LocalsSnapshot.capture()
        async(group: group, qos: qos, flags: flags) { snapshot.run(work) }
    }
}
