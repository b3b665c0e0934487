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
