// What swift-locals asks the running Swift concurrency runtime, and nothing else.
//
// Swift has no public task identity that is never reused (see the Lifetimes and Guarantees
// article). The concurrency runtime (libswift_Concurrency) exports, on Linux and on Apple OS
// runtimes, a few entry points and debug variables that answer what the library needs: the
// task's full 64-bit id, its job flags, and the size of the runtime's task object (published
// for debuggers). They are declared here, as C declarations with the Swift calling convention
// the runtime defines them with, so that Swift code calls them without `@_silgen_name`.
//
// Every declaration is weak: a runtime that lacks one still loads, the address reads as null,
// and the library says which check failed instead of crashing (`TaskDiscriminator.support`).
// Nothing here assumes a layout; `TaskRuntime` confirms each fact at first use.

#ifndef LOCALS_RUNTIME_H
#define LOCALS_RUNTIME_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#if __has_attribute(swiftcall)
#define LOCALS_SWIFTCALL __attribute__((swiftcall))
#else
#define LOCALS_SWIFTCALL
#endif

#if defined(__APPLE__)
#define LOCALS_WEAK __attribute__((weak_import))
#else
#define LOCALS_WEAK __attribute__((weak))
#endif

/// The task running on the calling thread, or null outside any task, not retained: what
/// `withUnsafeCurrentTask` asks the runtime, without the retain and release of the task it wraps
/// around its body.
extern void *LOCALS_SWIFTCALL swift_task_getCurrent(void) LOCALS_WEAK;

/// The task's 64-bit id (for a job that is not a task, the job's 32-bit id). Never reused.
extern uint64_t LOCALS_SWIFTCALL swift_task_getJobTaskId(const void *job) LOCALS_WEAK;
/// The job's flags word: the job kind in the low byte, then the task flags (32 bits of it).
extern size_t LOCALS_SWIFTCALL swift_task_getJobFlags(const void *job) LOCALS_WEAK;
/// `sizeof(AsyncTask)` in the runtime the process runs on, published for debuggers.
extern const size_t _swift_concurrency_debug_asyncTaskSize LOCALS_WEAK;
/// The version of the runtime's internal layouts that debuggers may decode (absent before 6.1).
extern const uint32_t _swift_concurrency_debug_internal_layout_version LOCALS_WEAK;
/// The class metadata of every task object, published for debuggers.
extern const void *const _swift_concurrency_debug_asyncTaskMetadata LOCALS_WEAK;

/// Binds a task-local for the running task (or, outside any task, the thread), as
/// `TaskLocal.withValue` does before its operation: `key` is the `TaskLocal` object, `value` points
/// to a value of type `valueType` that the runtime takes over (moves out of).
extern void LOCALS_SWIFTCALL swift_task_localValuePush(const void *key, void *value, const void *valueType) LOCALS_WEAK;
/// Removes the innermost binding, as `TaskLocal.withValue` does after its operation.
extern void LOCALS_SWIFTCALL swift_task_localValuePop(void) LOCALS_WEAK;
/// The value `key` (the `TaskLocal` object) is bound to for the running task (or thread), as a
/// pointer to a value of the key's type, or NULL where it is unbound: what `TaskLocal.get()` reads.
extern void *LOCALS_SWIFTCALL swift_task_localValueGet(const void *key) LOCALS_WEAK;

/// Whether the runtime exports the two entry points task identity needs.
static inline bool locals_runtime_has_task_entry_points(void) {
    return &swift_task_getJobTaskId != NULL && &swift_task_getJobFlags != NULL;
}

/// Whether the runtime exports the entry points that bind and unbind a task-local.
static inline bool locals_runtime_has_task_local_push(void) {
    return &swift_task_localValuePush != NULL && &swift_task_localValuePop != NULL;
}

/// Whether the runtime exports `swift_task_localValueGet`.
static inline bool locals_runtime_has_task_local_get(void) {
    return &swift_task_localValueGet != NULL;
}

/// `swift_task_localValueGet`; only where `locals_runtime_has_task_local_get()`.
static inline void *locals_runtime_task_local_get(const void *key) {
    return swift_task_localValueGet(key);
}

/// `swift_task_localValuePush`; only where `locals_runtime_has_task_local_push()`.
static inline void locals_runtime_push_task_local(const void *key, void *value, const void *valueType) {
    swift_task_localValuePush(key, value, valueType);
}

/// `swift_task_localValuePop`; only where `locals_runtime_has_task_local_push()`.
static inline void locals_runtime_pop_task_local(void) {
    swift_task_localValuePop();
}

/// Whether the runtime exports `swift_task_getCurrent`.
static inline bool locals_runtime_has_current_task(void) {
    return &swift_task_getCurrent != NULL;
}

/// The address of the running task, 0 outside any task (or if the runtime lacks the entry point).
static inline uintptr_t locals_runtime_current_task(void) {
    return &swift_task_getCurrent != NULL ? (uintptr_t)swift_task_getCurrent() : 0;
}

/// For tests only: when non-zero, every task id is folded so that all tasks share the low 32 bits
/// and differ only above them, to show that the library compares all 64. Set it before anything
/// uses a `.task` Local, in a process of its own.
extern int locals_runtime_testing_fold_task_ids;

/// Turns `locals_runtime_testing_fold_task_ids` on (tests only).
static inline void locals_runtime_testing_start_folding_task_ids(void) {
    locals_runtime_testing_fold_task_ids = 1;
}

/// The 64-bit id of a task; 0 if the runtime lacks the entry point.
static inline uint64_t locals_runtime_task_id(const void *task) {
    if (&swift_task_getJobTaskId == NULL) {
        return 0;
    }
    uint64_t id = swift_task_getJobTaskId(task);
    if (__builtin_expect(locals_runtime_testing_fold_task_ids != 0, 0)) {
        return (id << 32) | 0x5EED;
    }
    return id;
}

/// The job flags of a task; 0xFF (not a task) if the runtime lacks the entry point.
static inline uint32_t locals_runtime_job_flags(const void *task) {
    return &swift_task_getJobFlags != NULL ? (uint32_t)swift_task_getJobFlags(task) : 0xFF;
}

/// `sizeof(AsyncTask)`, or 0 if the runtime does not publish it.
static inline size_t locals_runtime_async_task_size(void) {
    return &_swift_concurrency_debug_asyncTaskSize != NULL ? _swift_concurrency_debug_asyncTaskSize : 0;
}

/// The internal layout version, or 0 if the runtime does not publish it.
static inline uint32_t locals_runtime_layout_version(void) {
    return &_swift_concurrency_debug_internal_layout_version != NULL
        ? _swift_concurrency_debug_internal_layout_version : 0;
}

/// The task class metadata, or null if the runtime does not publish it.
static inline const void *locals_runtime_task_metadata(void) {
    return &_swift_concurrency_debug_asyncTaskMetadata != NULL ? _swift_concurrency_debug_asyncTaskMetadata : NULL;
}

#endif
