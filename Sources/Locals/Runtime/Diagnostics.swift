/// Warnings, in debug builds, for two mistakes that compile and run but seldom do what was meant.
/// Each is said once per Local, on standard error, when the Local is first touched that way:
///
/// - A `.task` Local touched outside any task (and outside a snapshot's `run`): the value is kept
///   for the thread instead, and on a thread of a pool, unrelated work that runs there later
///   shares it.
/// - A child task (`async let`, a task group's) reading the initial value of a `.task` Local
///   whose parent wrote a value outside any scope: children inherit scopes, not a task's own
///   values.
///
/// Release builds say nothing and pay nothing: every call is compiled out.
@usableFromInline
enum Diagnostics {
    enum Mistake: String, Sendable {
        case touchedOutsideTask
        case childMissedParentValue
    }

    /// Where warnings go instead of standard error, while set (tests collect them).
    static let handler = Locked.make(nil as (@Sendable (Mistake, String) -> Void)?)

    /// The mistakes said already, by Local.
    private static let said = Locked.make(Set<Said>())

    private struct Said: Hashable {
        let local: UInt64
        let mistake: Mistake
    }

    /// Says `mistake` of the Local `local`, unless it was said before.
    static func warn(_ mistake: Mistake, local: UInt64, _ message: () -> String) {
        guard said.withLock({ $0.insert(Said(local: local, mistake: mistake)).inserted }) else { return }
        let text = message()
        if let handler = handler.withLock({ $0 }) {
            handler(mistake, text)
        } else {
            Platform.writeToStandardError("swift-locals (debug builds only): " + text + "\n")
        }
    }

    /// Says `.childMissedParentValue` of the Local `local`, described as `description`.
    @usableFromInline
    static func warnChildMissedParentValue(_ local: UInt64, _ description: String) {
        warn(.childMissedParentValue, local: local) { childMissedParentValue(description) }
    }

    /// The warning for a `.task` Local first touched outside any task.
    static func touchedOutsideTask(_ local: String, thread: ThreadID) -> String {
        """
        \(local) was touched outside any task (on \(thread)), so its value is kept for \
        that thread: on a thread of a pool (Dispatch, an event loop), work that runs there later \
        shares it. Touch it inside a Task, carry the task's values into callbacks with \
        LocalsSnapshot.capture() and run, or make the Local per thread on purpose: \
        Local(.thread) { ... }.
        """
    }

    /// The warning for a child task that read the initial value where its parent wrote one.
    static func childMissedParentValue(_ local: String) -> String {
        """
        a child task (async let, or a task group's) read the initial value of \(local), but its \
        parent task wrote a value of its own outside any scope: children inherit scopes, not a \
        task's own values. Write it in a scope that the children are created in: \
        local.withValue(\\.field, value) { ... }, or local.withScope { ... } around the work.
        """
    }
}
