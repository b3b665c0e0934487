#if Vapor
import Locals
import Vapor

extension Response.Body {
    /// The callback of a body made with `init(asyncStream:)` or `init(managedAsyncStream:)`.
    fileprivate typealias AsyncStreamCallback = @Sendable (any AsyncBodyStreamWriter) async throws -> Void
    /// The callback of a body made with `init(stream:)`.
    fileprivate typealias StreamCallback = @Sendable (any BodyStreamWriter) -> Void

    /// The same streamed body, with its callback run under `snapshot`; nil for a body that is not
    /// streamed (its bytes are already made) or not recognized.
    ///
    /// Vapor keeps a streamed body's count and callback in an internal struct, with no public way
    /// to read them back, so they are found by reflection: the `storage` child, its `stream` or
    /// `asyncStream` case, and that case's payload, checked to hold exactly `count: Int` and
    /// `callback` of the expected function type. The payload is then read through a struct of the
    /// same two fields (a function read out of a `Mirror` child directly is unusable: Swift
    /// 6.3's runtime hands back an async closure at the wrong abstraction, and calling it
    /// crashes). Should Vapor change that layout, the body is left as it is, and the tests of a
    /// streamed body fail.
    func writingStream(under snapshot: LocalsSnapshot) -> Response.Body? {
        guard let storage = Mirror(reflecting: self).descendant("storage"),
            let stream = Mirror(reflecting: storage).children.first,
            let kind = stream.label
        else { return nil }
        let allocator =
            Mirror(reflecting: self).descendant("byteBufferAllocator") as? ByteBufferAllocator ?? ByteBufferAllocator()
        switch kind {
        case "asyncStream":
            guard let payload = StreamPayload<AsyncStreamCallback>.read(stream.value) else { return nil }
            let callback = payload.callback
            return Response.Body(
                asyncStream: { writer in try await snapshot.run { try await callback(writer) } },
                count: payload.count,
                byteBufferAllocator: allocator
            )
        case "stream":
            guard let payload = StreamPayload<StreamCallback>.read(stream.value) else { return nil }
            let callback = payload.callback
            return Response.Body(
                stream: { writer in snapshot.run { callback(writer) } },
                count: payload.count,
                byteBufferAllocator: allocator
            )
        default:
            return nil
        }
    }
}

/// Reads Vapor's `Response.BodyStream` or `Response.AsyncBodyStream` (`count`, then `callback`).
private enum StreamPayload<Callback> {
    /// The layout of the async payload, with its function field at the same abstraction as Vapor's.
    struct Async {
        let count: Int
        let callback: Response.Body.AsyncStreamCallback
    }

    /// The layout of the callback-based payload.
    struct Sync {
        let count: Int
        let callback: Response.Body.StreamCallback
    }

    /// The payload's count and callback, or nil unless it has exactly those two fields, of the
    /// expected types, in that order, with a size and alignment that match.
    static func read(_ payload: Any) -> (count: Int, callback: Callback)? {
        let fields = Mirror(reflecting: payload).children.map { ($0.label, ObjectIdentifier(type(of: $0.value))) }
        guard fields.count == 2,
            fields[0].0 == "count", fields[0].1 == ObjectIdentifier(Int.self),
            fields[1].0 == "callback", fields[1].1 == ObjectIdentifier(Callback.self)
        else { return nil }
        if Callback.self == Response.Body.AsyncStreamCallback.self {
            guard let mirror = reinterpret(payload, as: Async.self) else { return nil }
            return (mirror.count, mirror.callback as! Callback)
        }
        if Callback.self == Response.Body.StreamCallback.self {
            guard let mirror = reinterpret(payload, as: Sync.self) else { return nil }
            return (mirror.count, mirror.callback as! Callback)
        }
        return nil
    }

    /// `value`'s bytes read as a `Layout`, when the two types' sizes and alignments match.
    private static func reinterpret<Value, Layout>(_ value: Value, as layout: Layout.Type) -> Layout? {
        guard MemoryLayout<Value>.size == MemoryLayout<Layout>.size,
            MemoryLayout<Value>.alignment == MemoryLayout<Layout>.alignment
        else { return nil }
        return unsafeBitCast(value, to: Layout.self)
    }
}
#endif
