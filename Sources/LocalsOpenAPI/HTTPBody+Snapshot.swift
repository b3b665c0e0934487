#if OpenAPI
import Locals
import OpenAPIRuntime

extension HTTPBody {
    /// The same body, each of whose chunks is produced under `snapshot`: its iterator is made, and
    /// each `next()` runs, inside `snapshot.run`.
    ///
    /// The transport iterates a response body after the middlewares have returned, in a task of
    /// its own; a body whose chunks are made as they are asked for (a lazy sequence, `map` over a
    /// stream) then reads the values of the request it answers. The body keeps its length and its
    /// iteration behavior: a `.single` body still refuses a second iterator.
    func producingChunks(under snapshot: LocalsSnapshot) -> HTTPBody {
        HTTPBody(
            SnapshotChunks(base: self, snapshot: snapshot),
            length: length,
            iterationBehavior: iterationBehavior
        )
    }
}

/// A body's chunks, each produced under a snapshot.
private struct SnapshotChunks: AsyncSequence, Sendable {
    typealias Element = HTTPBody.ByteChunk

    let base: HTTPBody
    let snapshot: LocalsSnapshot

    func makeAsyncIterator() -> Iterator {
        Iterator(base: snapshot.run { base.makeAsyncIterator() }, snapshot: snapshot)
    }

    struct Iterator: AsyncIteratorProtocol {
        var base: HTTPBody.Iterator
        let snapshot: LocalsSnapshot

        mutating func next() async throws -> HTTPBody.ByteChunk? {
            // One run per chunk: a run is a scope, and cannot stay open between two calls. Writes
            // made while producing a chunk are therefore that chunk's own (as inside any `run`).
            try await snapshot.run { try await base.next() }
        }
    }
}
#endif
