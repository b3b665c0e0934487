// Regression tests: what the model check found, pinned as plain tests (its finding on .overlay
// children of an owner that empties a list is one of the inheritance tests).

import Locals
import Testing

@Suite("Model check findings: discard(key:) for every kind of child")
struct ModelCheckFindingsTests {
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
}
