public import _LocalsRuntime  // public: `bind` is inlined into the Locals' snapshot operations

/// A synchronous `LocalsSnapshot.run`, in a loop rather than one nested call per part.
///
/// Each part is put in place in turn, with what undoes it kept in a slot of one temporary buffer
/// (on the stack for small snapshots); then each part is published to child tasks by binding its
/// Local's task-local through the runtime entry points that `TaskLocal.withValue` itself uses;
/// then the operation runs; then each part is unbound and taken away, in reverse. A run that
/// nested a closure per part needed a stack frame per Local (a few thousand overflowed a thread's
/// stack), and binding each part before putting the next in place made every first touch inside
/// walk the bindings made so far (a cost that grew with the square of the parts).
///
/// Where the runtime lacks those entry points, parts nest as before.
@usableFromInline
enum SnapshotRun {
    /// The bytes a part's undo takes (checked by each part when it opens).
    @inlinable static var slotSize: Int { 48 }
    /// A slot: the part's operations, unretained (the snapshot holds them), then its undo.
    static let slotStride = 8 + slotSize

    /// Whether the runtime exports the task-local push and pop (tests can force the nesting
    /// fallback with `LOCALS_FORCE_FALLBACK=taskLocalPush` in a debug build).
    static let canBind =
        locals_runtime_has_task_local_push() && !TaskRuntime.namesForcedByEnvironment().contains("taskLocalPush")

    static func run(_ parts: [SnapshotPart], _ body: () -> Void) {
        guard canBind else { return nested(parts, from: 0, body) }
        withUnsafeTemporaryAllocation(byteCount: parts.count * slotStride, alignment: 8) { buffer in
            let base = buffer.baseAddress.unsafelyUnwrapped
            var opened = 0
            for part in parts {
                let slot = base + opened * slotStride
                if part.open(at: slot + 8) {
                    slot.initializeMemory(as: Unmanaged<SnapshotOps>.self, to: .passUnretained(part.ops))
                    opened += 1
                }
            }
            for index in 0..<opened {
                let slot = base + index * slotStride
                slot.load(as: Unmanaged<SnapshotOps>.self)._withUnsafeGuaranteedRef { $0.publish(slot + 8) }
            }
            body()
            for index in (0..<opened).reversed() {
                let slot = base + index * slotStride
                slot.load(as: Unmanaged<SnapshotOps>.self)._withUnsafeGuaranteedRef { $0.close(slot + 8) }
            }
        }
    }

    private static func nested(_ parts: [SnapshotPart], from index: Int, _ body: () -> Void) {
        guard index < parts.count else { return body() }
        parts[index].enter { nested(parts, from: index + 1, body) }
    }

    /// Binds `key` to `value` for the running task (or thread), as `key.withValue(value)` does
    /// before its operation; `unbind()` removes the innermost binding.
    @inlinable
    static func bind<T: AnyObject>(_ key: TaskLocal<T?>, to value: T) {
        // The runtime takes the value over: a retained reference, as an optional's bit pattern.
        var taken: UnsafeMutableRawPointer? = Unmanaged.passRetained(value).toOpaque()
        withUnsafeMutablePointer(to: &taken) { pointer in
            locals_runtime_push_task_local(
                Unmanaged.passUnretained(key).toOpaque(), pointer,
                unsafeBitCast(T?.self as Any.Type, to: UnsafeRawPointer.self)
            )
        }
    }

    @inlinable
    static func unbind() {
        locals_runtime_pop_task_local()
    }
}
