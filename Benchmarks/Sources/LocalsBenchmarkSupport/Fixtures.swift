// What the benchmarks measure, declared once for the package-benchmark suite, `locals-compare`
// and `locals-profile`, so that every tool measures the same Locals against the same anchors.

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif
import Locals
import ServiceContextModule
import Synchronization

/// The value the measured Locals hold: the shape of the documentation's `RequestState`, plus the
/// `Int` the rows read and write.
///
/// `requestID` is longer than 15 UTF-8 bytes, so it lives on the heap: a read that copies the
/// whole value out instead of projecting `x` in place pays for the retain and release, as it
/// would in real code.
public struct RequestState: Sendable {
    public var x = 0
    public var requestID = "request-0000-0000-0001"
    public var user: String?

    public init() {}
}

/// The `.task` Local of the read, write and scope rows.
public let taskLocal = Local { RequestState() }

/// The `.thread` Local of the thread rows.
public let threadLocal = Local(.thread) { RequestState() }

/// A custom discriminator as the documentation writes one: a session ID held in a `@TaskLocal`.
public struct SessionDiscriminator: Discriminator {
    @TaskLocal public static var sessionID: String?

    public init() {}

    public var currentKey: String? { Self.sessionID }
}

/// ``SessionDiscriminator`` declaring its key carried by snapshots (`.perCarriedKey`): a capture
/// asks none of its Locals for their key. Registered with `LocalsSnapshot.carry` on first use.
public struct CarriedSessionDiscriminator: Discriminator {
    @TaskLocal public static var sessionID: String?

    private static let registered: Void = LocalsSnapshot.carry($sessionID)

    public init() { Self.registered }

    public var currentKey: String? { Self.sessionID }
    public var valueStorage: ValueStorage { .perCarriedKey }
}

/// The sessions the session rows bind, one per task of the two-sessions row. Both are at most 15
/// UTF-8 bytes, so they are stored inline: binding and comparing them never allocates.
public let sessionIDs = ["s-1", "s-2"]

/// The custom-discriminator Local of the session rows (the documentation's `cart`).
public let sessionLocal = Local(SessionDiscriminator()) { RequestState() }

/// The anchor of the session rows: the dictionary behind a lock a user would write by hand,
/// holding a value for each of ``sessionIDs``.
///
/// A class around the `Mutex`, held in a local constant by the loops as the Local is, so that
/// neither side pays a global's one-time initialization check on every access (a `Mutex` cannot
/// be copied into a local constant itself).
public final class SessionTable: Sendable {
    public let values = Mutex<[String: RequestState]>(
        Dictionary(uniqueKeysWithValues: sessionIDs.map { ($0, RequestState()) })
    )

    public init() {}

    /// The anchor's read: the same `currentKey` the Local reads (the session's `@TaskLocal`), then
    /// the lookup, under the lock.
    @inlinable
    @inline(__always)
    public func currentX() -> Int? {
        values.withLock { $0[SessionDiscriminator.sessionID!]?.x }
    }
}

public let sessionTable = SessionTable()

/// A plain `@TaskLocal`: the platform's own scoped, per-task value.
public enum Anchor {
    @TaskLocal public static var value = 0
}

/// The one `ServiceContext` key of the peer row: what users would otherwise reach for.
public enum RequestIDKey: ServiceContextKey {
    public typealias Value = Int
}

/// A context holding one value, to bind with `ServiceContext.withValue` before reading it back.
public func serviceContextWithValue(_ value: Int) -> ServiceContext {
    var context = ServiceContext.topLevel
    context[RequestIDKey.self] = value
    return context
}

/// A pthread key, the anchor of the `.thread` read row: `pthread_getspecific` is what a
/// hand-written thread-local costs.
public let pthreadKey: pthread_key_t = {
    var key = pthread_key_t()
    precondition(pthread_key_create(&key, nil) == 0, "pthread_key_create failed")
    return key
}()

/// Keeps a value alive without the optimizer seeing what happens to it: package-benchmark's
/// `blackHole`, for the tools here that do not link package-benchmark. A call into another module
/// that is never inlined, so it costs the same wherever it is used.
@_optimize(none)
public func sink(_ value: some Any) {}
