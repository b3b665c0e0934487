// Regression tests: what the model check found, pinned as plain tests.

import Locals
import Testing

@Suite("Model check findings: discard(key:) for every kind of child, .overlay children of an owner that shrinks a list")
struct ModelCheckFindingsTests {
    // MARK: discard(key:)

    @Test("discard(key:) with a child's own TaskID, inside a scope, drops its value", arguments: ChildKind.allCases)
    func discardOwnKeyInScope(kind: ChildKind) async {
        let local = Local { Sample() }
        await local.withValues({ $0.count = 1 }) {
            let seen = await inChild(kind) { () -> Int in
                local.count = 10
                local.discard(key: TaskID.current!)
                // The child's own value is gone: its next touch starts over from the scope.
                return local.count
            }
            #expect(seen == 1)
        }
    }

    @Test("discard(key:) of a child's TaskID from its parent, inside a scope, drops the child's value",
          arguments: ChildKind.allCases)
    func discardChildKeyInScope(kind: ChildKind) async {
        let local = Local { Sample() }
        await local.withValues({ $0.count = 1 }) {
            let wrote = Signal()
            let discarded = Signal()
            let child = Box<TaskID>()
            let seen = await inChild(kind, { () -> Int in
                child.value = TaskID.current!
                local.count = 10
                wrote.fire()
                await discarded.wait()
                return local.count
            }, meanwhile: {
                await wrote.wait()
                local.discard(key: child.value!)
                discarded.fire()
            })
            #expect(seen == 1)
        }
    }

    @Test("a child's value discarded from its parent is released at the child's next touch",
          arguments: ChildKind.allCases)
    func discardedFromElsewhereReleasedAtNextTouch(kind: ChildKind) async {
        let counter = DeinitCounter()
        let local = Local { Sample() }
        let wrote = Signal()
        let discarded = Signal()
        let child = Box<TaskID>()
        let (seen, releasedAtTouch) = await inChild(kind, { () -> (Int, Int) in
            child.value = TaskID.current!
            local.count = 10
            local.tracked = counter.make()
            wrote.fire()
            await discarded.wait()
            let seen = local.count  // the next touch
            return (seen, counter.count)
        }, meanwhile: {
            await wrote.wait()
            local.discard(key: child.value!)
            discarded.fire()
        })
        #expect(seen == 0)
        #expect(releasedAtTouch == 1, "the discarded value was not released at the owner's next touch")
    }

    // MARK: An owner that shrinks a list under .overlay children

    /// How an `.overlay` child writes before its owner empties the list.
    enum OverlayWrite: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case elementKeyPath = "local[dynamicMember: \\.list[1]] = x"
        case elementProperty = "local.list[1] = x"
        case storedPart = "local.simple = x"

        var testDescription: String { rawValue }
    }

    @Test("an .overlay child reads its own view, never a trap, after its owner empties the list it wrote into",
          arguments: OverlayWrite.allCases, ChildKind.allCases)
    func overlayChildAfterOwnerShrinks(write: OverlayWrite, kind: ChildKind) async {
        let local = Local(inheritance: .overlay) { Sample() }
        await local.withValues({ $0.list = ["from", "parent"] }) {
            let wrote = Signal()
            let shrunk = Signal()
            let (list, simple) = await inChild(kind, { () -> ([String], String) in
                switch write {
                case .elementKeyPath: local[dynamicMember: \.list[1]] = "child"
                case .elementProperty: local.list[1] = "child"
                case .storedPart: local.simple = "child"
                }
                wrote.fire()
                await shrunk.wait()
                return (local.list, local.simple)
            }, meanwhile: {
                await wrote.wait()
                local.list = []
                local.simple = "owner, later"
                shrunk.fire()
            })
            switch write {
            case .elementKeyPath:
                // A write through a key path that is not a stored part froze the child's view.
                #expect(list == ["from", "child"])
                #expect(simple == Sample.initial, "a frozen child read through to its owner's later write")
            case .elementProperty:
                // Property syntax wrote all of `list` into the child's layer; the rest reads through.
                #expect(list == ["from", "child"])
                #expect(simple == "owner, later")
            case .storedPart:
                #expect(list.isEmpty)
                #expect(simple == "child")
            }
            #expect(local.list.isEmpty)
        }
    }
}
