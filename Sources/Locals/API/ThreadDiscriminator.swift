/// Keys values by the OS thread that runs the accessing line, like Python's `threading.local`.
///
/// Each thread gets its own value, created by the Local's initializer on the thread's first touch
/// and released when the thread exits. A thread that starts later never sees an exited thread's
/// values, even where the system reuses the thread's `pthread_t`.
///
/// ```swift
/// let scratch = Local(.thread) { [UInt8]() }
/// Thread.detachNewThread { scratch.value.append(1) }   // this thread's own buffer
/// ```
///
/// - Important: This is synchronous-code API. In `async` code a task can move to another thread at
///   every `await`, so `.thread` means "whatever thread runs this line": a value written before an
///   `await` may not be the one read after it. Use ``TaskDiscriminator`` (the default) for values
///   that follow a task. The main thread's values live until the process exits, because the
///   system runs no thread-exit destructors for it.
public struct ThreadDiscriminator: Discriminator {
    public init() {}

    /// ``ValueStorage/perThread``: values released when their thread exits.
    public var valueStorage: ValueStorage { .perThread }

    /// The calling thread's identifier. Never nil.
    public var currentKey: ThreadID? { ThreadContext.current.id }
}

/// Identifies an OS thread for the lifetime of the process: a later thread never gets the same
/// identifier, even where the system reuses the thread's `pthread_t`.
public struct ThreadID: Hashable, Sendable, CustomStringConvertible {
    let serial: UInt64

    init(serial: UInt64) {
        self.serial = serial
    }

    /// The calling thread's identifier.
    public static var current: ThreadID { ThreadContext.current.id }

    public var description: String { "thread #\(serial)" }
}
