// The one place swift-locals talks to the C library: threads, the thread-specific key, mutexes and
// condition variables, the environment. Every other file goes through these types, so a platform
// is added (or found missing) here only, and every pthread call's return code is checked once.

#if canImport(Darwin)
public import Darwin
#elseif canImport(Glibc)
public import Glibc
#elseif canImport(Musl)
public import Musl
#elseif canImport(Android)
public import Android
#else
#error("swift-locals supports Apple platforms and Linux (Glibc, Musl) and Android; this platform has none of their C libraries")
#endif

/// A pthread mutex and a condition variable in memory of their own, whose address never moves.
///
/// The only mutex swift-locals uses (`Locked` keeps state behind one, `LockedBox` sleeps on them,
/// the runtime probe's executor queues jobs under one). A pthread mutex rather than
/// `Synchronization.Mutex`: on Linux with Swift 6.3, `Mutex` waits with raw futex calls that
/// Thread Sanitizer does not see, and the test suite runs under Thread Sanitizer.
final class PlatformMutex: @unchecked Sendable {
    // @unchecked: the mutex and condition are only used through the calls below.
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    init() {
        mutex.initialize(to: pthread_mutex_t())
        condition.initialize(to: pthread_cond_t())
        Platform.check(pthread_mutex_init(mutex, nil), "pthread_mutex_init")
        Platform.check(pthread_cond_init(condition, nil), "pthread_cond_init")
    }

    deinit {
        Platform.check(pthread_cond_destroy(condition), "pthread_cond_destroy")
        Platform.check(pthread_mutex_destroy(mutex), "pthread_mutex_destroy")
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() {
        Platform.check(pthread_mutex_lock(mutex), "pthread_mutex_lock")
    }

    func unlock() {
        Platform.check(pthread_mutex_unlock(mutex), "pthread_mutex_unlock")
    }

    /// Runs `body` with the mutex held.
    func withLock<R, E: Error>(_ body: () throws(E) -> R) throws(E) -> R {
        lock()
        defer { unlock() }
        return try body()
    }

    /// Sleeps until `broadcast()`, with the mutex held (it is let go meanwhile). Wake-ups can be
    /// spurious: check what you wait for in a loop.
    func wait() {
        Platform.check(pthread_cond_wait(condition, mutex), "pthread_cond_wait")
    }

    /// `wait()`, for at most `milliseconds`.
    func wait(milliseconds: Int) {
        var now = timespec()
        Platform.check(clock_gettime(CLOCK_REALTIME, &now), "clock_gettime")
        var nanoseconds = Int(now.tv_nsec) + milliseconds * 1_000_000
        var deadline = now
        deadline.tv_sec += .init(nanoseconds / 1_000_000_000)
        nanoseconds %= 1_000_000_000
        deadline.tv_nsec = .init(nanoseconds)
        let result = pthread_cond_timedwait(condition, mutex, &deadline)
        if result != ETIMEDOUT {
            Platform.check(result, "pthread_cond_timedwait")
        }
    }

    /// Wakes every thread in `wait`. Call it with the mutex held.
    func broadcast() {
        Platform.check(pthread_cond_broadcast(condition), "pthread_cond_broadcast")
    }
}

/// Threads, the thread-specific key and the environment.
@usableFromInline
enum Platform {
    /// The key of one thread-specific pointer: set per thread, read with no lock.
    @usableFromInline typealias ThreadKey = pthread_key_t

    /// Stops the program if a C library call failed: each of these fails only on a broken
    /// invariant (a mutex destroyed while held, a key table full), never in normal operation.
    @inline(__always)
    static func check(_ result: Int32, _ call: StaticString) {
        if result != 0 {
            failed(call, result)
        }
    }

    private static func failed(_ call: StaticString, _ result: Int32) -> Never {
        fatalError("swift-locals: \(call) failed with error \(result)")
    }

    /// Memory for one `T`, from `malloc` (or `posix_memalign`, for an alignment over malloc's 16
    /// bytes), released by `deallocate`. `UnsafeMutablePointer.allocate` asks the Swift runtime
    /// for aligned memory whatever the alignment (`posix_memalign` on Linux), about a hundred
    /// instructions more each way; a scope's frame allocates its value's memory like this.
    @inlinable
    static func allocate<T>(_: T.Type) -> UnsafeMutablePointer<T> {
        let size = Swift.max(1, MemoryLayout<T>.stride)
        var raw: UnsafeMutableRawPointer?
        if MemoryLayout<T>.alignment <= 16 {
            raw = malloc(size)
        } else if posix_memalign(&raw, MemoryLayout<T>.alignment, size) != 0 {
            raw = nil
        }
        guard let raw else { fatalError("swift-locals: out of memory") }
        return raw.bindMemory(to: T.self, capacity: 1)
    }

    /// Releases memory from `allocate`.
    @inlinable
    static func deallocate<T>(_ pointer: UnsafeMutablePointer<T>) {
        free(pointer)
    }

    /// Whether two buffers of the same size hold the same bytes (`memcmp`).
    @inlinable
    static func sameBytes(_ a: UnsafeRawBufferPointer, _ b: UnsafeRawBufferPointer) -> Bool {
        precondition(a.count == b.count)
        guard let first = a.baseAddress, let second = b.baseAddress else { return true }
        return memcmp(first, second, a.count) == 0
    }

    /// A new thread-specific key for an object: `setValue` stores a retained reference, which is
    /// released when its thread exits.
    static func makeObjectKey() -> ThreadKey {
        var key = ThreadKey()
        check(pthread_key_create(&key, releaseThreadObject), "pthread_key_create")
        return key
    }

    /// The calling thread's value for `key`. No lock, no allocation.
    @inlinable
    @inline(__always)
    static func value(for key: ThreadKey) -> UnsafeMutableRawPointer? {
        pthread_getspecific(key)
    }

    static func setValue(_ value: UnsafeMutableRawPointer?, for key: ThreadKey) {
        check(pthread_setspecific(key, value), "pthread_setspecific")
    }

    /// A number that identifies the calling thread among the threads alive now (never 0).
    @inlinable
    static var threadToken: UInt {
        #if canImport(Glibc)
        UInt(pthread_self())  // pthread_t is an unsigned integer here, a pointer or Int elsewhere
        #else
        UInt(bitPattern: pthread_self())
        #endif
    }

    /// Runs `body` on a new thread, and returns once the thread has ended.
    static func runOnNewThread(_ body: @escaping @Sendable () -> Void) {
        let job = Unmanaged.passRetained(ThreadJob(body)).toOpaque()
        #if canImport(Darwin) || canImport(Musl)
        var thread: pthread_t?  // a pointer, which pthread_create takes as optional
        #else
        var thread = pthread_t()  // an integer on glibc and Android
        #endif
        // The start routine returns its argument: some C libraries declare its result optional,
        // others not, and every one of them ignores it here.
        check(pthread_create(&thread, nil, { raw in
            runThreadJob(raw)
            return raw
        }, job), "pthread_create")
        #if canImport(Darwin) || canImport(Musl)
        check(pthread_join(thread!, nil), "pthread_join")
        #else
        check(pthread_join(thread, nil), "pthread_join")
        #endif
    }

    /// Writes `text` to standard error in one call, so that the line is not interleaved with others.
    static func writeToStandardError(_ text: String) {
        var text = text
        text.withUTF8 { bytes in
            _ = write(2, bytes.baseAddress, bytes.count)
        }
    }

    /// The environment variable `name`, if set.
    /// The operating system and machine as the kernel names them (`uname`), as in "Linux x86_64":
    /// for the runtime's description in a report.
    static var systemDescription: String {
        var names = utsname()
        guard uname(&names) == 0 else { return "an unnamed system" }
        func text<Field>(_ field: Field) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return "\(text(names.sysname)) \(text(names.machine))"
    }

    static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }
}

/// Releases a thread's object when the thread exits (the argument is optional in glibc's and
/// Musl's declaration, not in Darwin's).
#if canImport(Darwin)
private let releaseThreadObject: @convention(c) (UnsafeMutableRawPointer) -> Void = { raw in
    Unmanaged<AnyObject>.fromOpaque(raw).release()
}
#else
private let releaseThreadObject: @convention(c) (UnsafeMutableRawPointer?) -> Void = { raw in
    guard let raw else { return }
    Unmanaged<AnyObject>.fromOpaque(raw).release()
}
#endif

private final class ThreadJob: Sendable {
    let body: @Sendable () -> Void
    init(_ body: @escaping @Sendable () -> Void) { self.body = body }
}

/// A new thread's body (the start routine's argument is optional on some C libraries).
private func runThreadJob(_ raw: UnsafeMutableRawPointer?) {
    Unmanaged<ThreadJob>.fromOpaque(raw!).takeRetainedValue().body()
}
