import Synchronization

/// The parts of a snapshot that its chain cannot carry (`.overlay` children's own writes,
/// `.thread` values, sessions), in the order their Locals were made: a list through the parts
/// themselves (each `PartData` is a `PartNode`), so that a capture allocates nothing for the list
/// and a snapshot holds it by one reference. An array of one part cost a capture its allocation,
/// its growth and its release, about as much as the rest of the capture.
struct SnapshotParts: Sequence, Sendable {
    /// The first part. The only stored property: a snapshot with a second one here (the list's
    /// tail, say) was destroyed through a generic outlined copy, 85 instructions more per capture.
    private let head: PartNode?

    init() {
        head = nil
    }

    init(_ list: Builder) {
        head = list.head
    }

    var isEmpty: Bool { head == nil }

    var count: Int {
        var count = 0
        var node = head
        while let current = node {
            count += 1
            node = current.next
        }
        return count
    }

    /// The list as a capture makes it.
    struct Builder {
        fileprivate var head: PartNode?
        /// The last part, held by the one before it (or `head`): parts mostly come in order, and
        /// are added at the end with no walk.
        private var tail: Unmanaged<PartNode>?

        init() {}

        /// Adds `data`, what `ops`'s Local gave a capture, in its Local's place in the order of
        /// ids (the order the Locals were made): a capture takes its Locals kind by kind, each
        /// kind's in that order. The nodes are not changed after the capture.
        ///
        /// A shared part (one a `.thread` cell keeps for every capture, see `Cell.threadPart`)
        /// is never changed once another snapshot may hold it: its `ops` are set by the capture
        /// that made it, and it goes into the list by itself only where it is the whole list;
        /// beside other parts it goes in a `PartWrapper`, whose link is this list's own.
        @inline(__always)
        mutating func insert(_ part: consuming PartNode, of ops: Unmanaged<SnapshotOps>) {
            // (The operations lent, not retained: a part stores them only where they are not in it
            // already, and a kept part has them from the capture that made it.)
            let localID = ops._withUnsafeGuaranteedRef { $0.localID }
            var data = part
            if data.isShared {
                if data.ops == nil {
                    data.ops = ops.takeUnretainedValue()  // made by this capture: nobody else holds it yet
                }
                guard head != nil else {
                    // The whole list so far: in by itself, its link (nil) not written.
                    head = consume data
                    tail = nil
                    return
                }
                data = PartWrapper(data)
            } else {
                data.ops = ops.takeUnretainedValue()
            }
            if let first = head, first.isShared {
                // The shared part alone so far: wrapped, to be linked.
                let wrapped = PartWrapper(first)
                head = wrapped
                tail = Unmanaged.passUnretained(wrapped)
            }
            // From here on `data` is not a shared part: its links are this list's own.
            if let last = tail, last._withUnsafeGuaranteedRef({ $0.localID < localID }) {
                last._withUnsafeGuaranteedRef { $0.next = data }
                tail = Unmanaged.passUnretained(data)
                return
            }
            guard let first = head, first.localID < localID else {
                if tail == nil {
                    tail = Unmanaged.passUnretained(data)
                }
                data.next = head.take()
                head = consume data
                return
            }
            var previous = first
            while let next = previous.next, next.localID < localID {
                previous = next
            }
            data.next = previous.next
            previous.next = data
        }
    }

    func makeIterator() -> Iterator {
        Iterator(node: head)
    }

    struct Iterator: IteratorProtocol {
        fileprivate var node: PartNode?

        mutating func next() -> SnapshotPart? {
            guard let current = node else { return nil }
            node = current.next
            let data = current.isWrapper ? unsafeDowncast(current, to: PartWrapper.self).part : current
            return SnapshotPart(data: data, ops: current.ops.unsafelyUnwrapped)
        }
    }
}

/// A part of a snapshot as its list holds it: the Local's operations, and the next part.
///
/// `@unchecked Sendable`: `ops` and `next` are set while the capture that made the part builds its
/// list, before the snapshot is seen by anyone, and never changed afterwards.
@usableFromInline
class PartNode: @unchecked Sendable {
    /// The operations of the part's Local (set by `SnapshotParts.insert`).
    // Unchecked: set while one capture builds its list, before anyone else sees the part.
    @exclusivity(unchecked) final var ops: SnapshotOps?
    @exclusivity(unchecked) final var next: PartNode?
    /// A part that a cell keeps and hands to every capture while its value stays the same: other
    /// snapshots may hold it, so it is never linked into a list of more than one (see `insert`).
    @exclusivity(unchecked) @usableFromInline final var isShared = false
    /// A `PartWrapper`.
    @exclusivity(unchecked) final var isWrapper = false

    @inlinable
    init() {}

    var localID: UInt64 { ops.unsafelyUnwrapped.localID }

    /// Releases the parts after this one in a loop, not one nested deinit per part (a capture on a
    /// thread with thousands of `.thread` values makes as many).
    deinit {
        var next = next.take()
        while var current = next {
            next = nil
            // Only this deinit holds `current` when it is uniquely referenced: nobody else can read
            // its link while it is taken. The fence orders this after the other holders' last
            // reads, as `ScopeFrame.recycle` does.
            guard isKnownUniquelyReferenced(&current) else { break }
            atomicMemoryFence(ordering: .acquiring)
            next = current.next.take()
        }
    }
}

/// A shared part in a list of more than one: the link is the wrapper's, so the part is not
/// changed. The list hands out the part itself.
final class PartWrapper: PartNode, @unchecked Sendable {
    let part: PartNode

    init(_ part: PartNode) {
        self.part = part
        super.init()
        ops = part.ops
        isWrapper = true
    }
}
