import Locals
import Testing

@Suite("Inheritance: what a child created inside a scope sees")
struct InheritanceTests {
    /// The scenario of the table of what a child sees under each policy, step by step, with every
    /// ordering forced by a signal.
    static func runTableScenario(
        _ local: Local<Sample>, _ kind: ChildKind, scopePolicy: Inheritance? = nil
    ) async -> TableRow {
        await local.withValues({ $0.simple = "from parent"; $0.list = ["from", "parent"] }, inheritance: scopePolicy) {
            let firstRead = Signal()
            let lateSet = Signal()
            let (first, late) = await inChild(kind, { () -> (String, String) in
                let first = local.simple
                firstRead.fire()
                await lateSet.wait()
                let late = local.late
                local.simple = "from child"
                local.list[1] = "child"
                return (first, late)
            }, meanwhile: {
                await firstRead.wait()
                local.late = "after spawn"
                lateSet.fire()
            })
            return TableRow(childFirstSimple: first, childLate: late,
                            ownerSimpleAfter: local.simple, ownerListAfter: local.list)
        }
    }

    @Test("the table of what a child sees under each policy holds for every way to create a child",
          arguments: Inheritance.all, ChildKind.allCases)
    func table(policy: Inheritance, kind: ChildKind) async {
        let local = Local(inheritance: policy) { Sample() }
        let row = await Self.runTableScenario(local, kind)
        #expect(row == TableRow.expected(policy))
        // The scope is over: the owner is back to its own (initial) value.
        #expect(local.simple == Sample.initial)
        #expect(local.late == Sample.initial)
    }

    @Test("a scope's inheritance: argument overrides the Local's policy",
          arguments: Inheritance.all, ChildKind.core)
    func perScopeOverride(policy: Inheritance, kind: ChildKind) async {
        for localPolicy in Inheritance.all where localPolicy != policy {
            let local = Local(inheritance: localPolicy) { Sample() }
            let row = await Self.runTableScenario(local, kind, scopePolicy: policy)
            #expect(row == TableRow.expected(policy), "Local's own policy .\(localPolicy)")
        }
    }

    @Test("an owner's assignment inside a scope, made before creating a child, reaches the child",
          arguments: Inheritance.all, ChildKind.allCases)
    func assignmentBeforeSpawn(policy: Inheritance, kind: ChildKind) async {
        let local = Local(inheritance: policy) { Sample() }
        let seen = await local.withScope {
            local.simple = "assigned"
            local.list[0] = "assigned too"
            local.update { $0.id = 42 }
            return await inChild(kind) { (local.simple, local.list, local.id) }
        }
        if policy == .fresh {
            #expect(seen.0 == Sample.initial)
            #expect(seen.1 == Sample.initialList)
            #expect(seen.2 == -1)
        } else {
            #expect(seen.0 == "assigned")
            #expect(seen.1 == ["assigned too", Sample.initial])
            #expect(seen.2 == 42)
        }
    }

    @Test("Task.detached inherits nothing, under any policy", arguments: Inheritance.all)
    func detachedInheritsNothing(policy: Inheritance) async {
        let local = Local(inheritance: policy) { Sample() }
        let seen = await local.withValue(\.simple, "scoped") {
            local.id = 1
            return await inDetachedTask { () -> (String, Int) in
                let seen = (local.simple, local.id)
                local.simple = "detached wrote"
                return seen
            }
        }
        #expect(seen == (Sample.initial, -1))
        // Nor does a detached task created inside a scope of a scope-created child.
        let nested = await local.withValue(\.simple, "scoped") {
            await Task { await Task.detached { local.simple }.value }.value
        }
        #expect(nested == Sample.initial)
    }

    @Test("tasks created outside any scope start from initialValue(), under every policy",
          arguments: Inheritance.all, ChildKind.allCases)
    func noScopeNoInheritance(policy: Inheritance, kind: ChildKind) async {
        let local = Local(inheritance: policy) { Sample() }
        local.simple = "unscoped parent write"
        local.id = 1
        let seen = await inChild(kind) { () -> (String, Int) in
            let seen = (local.simple, local.id)
            local.simple = "child write"
            return seen
        }
        #expect(seen == (Sample.initial, -1))
        #expect(local.simple == "unscoped parent write", "a child's write reached its parent")
    }

    @Test("a grandchild inherits from the nearest enclosing scope, not from a child's unscoped writes",
          arguments: Inheritance.all, ChildKind.core)
    func grandchild(policy: Inheritance, kind: ChildKind) async {
        let local = Local(inheritance: policy) { Sample() }
        let (unscoped, scoped) = await local.withValue(\.simple, "outer scope") {
            await inChild(kind) { () -> (String, String) in
                local.simple = "child unscoped"
                let unscoped = await inChild(kind) { local.simple }
                let scoped = await local.withValue(\.simple, "child scope") {
                    await inChild(kind) { local.simple }
                }
                return (unscoped, scoped)
            }
        }
        switch policy {
        case .copy, .overlay:
            #expect(unscoped == "outer scope")
            #expect(scoped == "child scope")
        case .shared:
            // Under .shared the child's write goes to the scope's one value, which the
            // grandchild shares; the child's own scope then applies.
            #expect(unscoped == "child unscoped")
            #expect(scoped == "child scope")
        case .fresh:
            #expect(unscoped == Sample.initial)
            #expect(scoped == Sample.initial)
        }
    }

    @Test("a Task {} that outlives its scope still sees the scope's value",
          arguments: [Inheritance.copy, .overlay, .shared])
    func escapingTask(policy: Inheritance) async {
        let local = Local(inheritance: policy) { Sample() }
        let scopeEnded = Signal()
        let task = local.withValue(\.simple, "scoped") {
            Task { () -> String in
                await scopeEnded.wait()
                return local.simple  // first touch after the scope ended
            }
        }
        #expect(local.simple == Sample.initial)
        scopeEnded.fire()
        #expect(await task.value == "scoped")
    }

    @Test("under .copy a child's writes are its own and the owner's later writes are not seen",
          arguments: ChildKind.allCases)
    func copyIsolation(kind: ChildKind) async {
        let local = Local(inheritance: .copy) { Sample() }
        await local.withValue(\.count, 1) {
            let touched = Signal()
            let ownerWrote = Signal()
            let seen = await inChild(kind, { () -> (Int, Int) in
                let first = local.count
                local.id = 7
                touched.fire()
                await ownerWrote.wait()
                return (first, local.count)
            }, meanwhile: {
                await touched.wait()
                local.count = 2
                ownerWrote.fire()
            })
            #expect(seen == (1, 1))
            #expect(local.id == -1)
            #expect(local.count == 2)
        }
    }

    /// A value with a nested struct, for writes to stored parts below the top level.
    struct Nested: Sendable {
        struct Inner: Sendable {
            var name = "i"
            var note = "i"
        }
        var inner = Inner()
        var list = ["i", "i", "i"]
        var simple = "i"
    }

    @Test("overlay: a write to a nested stored part overlays just that part", arguments: ChildKind.allCases)
    func overlayNestedStoredPaths(kind: ChildKind) async {
        let local = Local(inheritance: .overlay) { Nested() }
        await local.withValues({ $0.inner.name = "parent"; $0.inner.note = "parent" }) {
            let childWrote = Signal()
            let ownerWrote = Signal()
            let seen = await inChild(kind, { () -> (String, String, String) in
                local[dynamicMember: \.inner.name] = "child"
                childWrote.fire()
                await ownerWrote.wait()
                return (local.inner.name, local.inner.note, local.simple)
            }, meanwhile: {
                await childWrote.wait()
                local.inner.note = "parent later"
                local.inner.name = "parent later"
                local.simple = "parent later"
                ownerWrote.fire()
            })
            #expect(seen.0 == "child", "the child's own part")
            #expect(seen.1 == "parent later", "the sibling part reads through")
            #expect(seen.2 == "parent later")
            #expect(local.inner.name == "parent later", "the child's write stayed in its layer")
        }
    }

    @Test("overlay: a child's later write to a part decides it over its earlier writes to the part and within it")
    func overlayLaterWriteDecides() async {
        let local = Local(inheritance: .overlay) { Nested() }
        await local.withValue(\.simple, "scope") {
            let seen = await Task { () -> [String] in
                local[dynamicMember: \.inner] = Nested.Inner(name: "first", note: "first")
                local[dynamicMember: \.inner.name] = "inside"
                local[dynamicMember: \.inner] = Nested.Inner(name: "whole again", note: "whole again")
                let afterWhole = [local.inner.name, local.inner.note]
                local[dynamicMember: \.inner.note] = "note last"
                return afterWhole + [local.inner.name, local.inner.note, local.simple]
            }.value
            #expect(seen == ["whole again", "whole again", "whole again", "note last", "scope"])
            #expect(local.inner.name == "i", "the child's writes stayed in its layer")
        }
    }

    /// How an `.overlay` child writes before its owner empties the list.
    enum OverlayWrite: String, CaseIterable, Sendable, CustomTestStringConvertible {
        case elementKeyPath = "local[dynamicMember: \\.list[1]] = x"
        case elementProperty = "local.list[1] = x"
        case storedPart = "local.simple = x"

        var testDescription: String { rawValue }
    }

    @Test("overlay: after its owner empties the list a child wrote into, the child reads its own view and never traps",
          arguments: OverlayWrite.allCases, ChildKind.allCases)
    func overlayChildAfterOwnerShrinks(write: OverlayWrite, kind: ChildKind) async {
        // The model check found that an element write replayed on the owner's emptied list trapped.
        let local = Local(inheritance: .overlay) { Nested() }
        await local.withValues({ $0.list = ["a", "b", "c"]; $0.simple = "parent" }) {
            let childWrote = Signal()
            let ownerWrote = Signal()
            typealias Seen = (afterWrite: [String], list: [String], simple: String, third: String?)
            let seen = await inChild(kind, { () -> Seen in
                switch write {
                case .elementKeyPath: local[dynamicMember: \.list[1]] = "X"
                case .elementProperty: local.list[1] = "X"
                case .storedPart: local.simple = "X"
                }
                let afterWrite = local.list
                childWrote.fire()
                await ownerWrote.wait()
                let list = local.list
                // An element's own key path, where the child's view still has the element.
                let third = list.count > 2 ? local[dynamicMember: \.list[2]] : nil
                return (afterWrite, list, local.simple, third)
            }, meanwhile: {
                await childWrote.wait()
                local.list = []
                local.simple = "parent later"
                ownerWrote.fire()
            })
            switch write {
            case .elementKeyPath:
                // A write through a key path that is not a stored part froze the child's view.
                #expect(seen.afterWrite == ["a", "X", "c"])
                #expect(seen.list == ["a", "X", "c"], "the child keeps the view its element write froze")
                #expect(seen.simple == "parent", "a frozen child no longer reads through")
                #expect(seen.third == "c")
            case .elementProperty:
                // Property syntax wrote all of `list` into the child's layer; the rest reads through.
                #expect(seen.afterWrite == ["a", "X", "c"])
                #expect(seen.list == ["a", "X", "c"])
                #expect(seen.simple == "parent later")
                #expect(seen.third == "c")
            case .storedPart:
                #expect(seen.afterWrite == ["a", "b", "c"])
                #expect(seen.list.isEmpty)
                #expect(seen.simple == "X")
                #expect(seen.third == nil)
            }
            #expect(local.list.isEmpty, "the child's write stayed its own")
        }
    }

    @Test("under .overlay a child's assignment to a whole value stops reading through")
    func overlayWholeValue() async {
        let local = Local(inheritance: .overlay) { Sample() }
        await local.withValue(\.simple, "parent") {
            let childWrote = Signal()
            let ownerWrote = Signal()
            let seen = await inChild(.unstructuredTask, { () -> (String, String) in
                local.update { $0.id = 3 }
                childWrote.fire()
                await ownerWrote.wait()
                return (local.simple, local.late)
            }, meanwhile: {
                await childWrote.wait()
                local.simple = "parent later"
                local.late = "late"
                ownerWrote.fire()
            })
            #expect(seen == ("parent", Sample.initial))
        }
    }

    @Test("under .shared, 200 children doing 100 updates each sum exactly", arguments: [false, true])
    func sharedUpdatesSum(viaOverride: Bool) async {
        let local = Local(inheritance: viaOverride ? .copy : .shared) { Sample() }
        let total = await local.withScope(inheritance: viaOverride ? .shared : nil) {
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<200 {
                    group.addTask {
                        for step in 0..<100 {
                            local.update { $0.count += 1 }
                            if step.isMultiple(of: 25) { await Task.yield() }
                        }
                    }
                }
            }
            return local.count
        }
        #expect(total == 20_000)
        #expect(local.count == 0)
    }

    @Test("300 concurrent requests fanning out 10 children each: no cross-talk",
          arguments: [Inheritance.copy, .overlay, .shared])
    func requestsNoCrossTalk(policy: Inheritance) async {
        let local = Local(inheritance: policy) { Sample() }
        let failures = Collector<String>()
        let kinds = ChildKind.allCases
        await withTaskGroup(of: Void.self) { requests in
            for request in 0..<300 {
                requests.addTask {
                    await local.withValues({ $0.id = request; $0.simple = "request \(request)" }) {
                        for _ in 0..<Int.random(in: 0...3) { await Task.yield() }
                        await withTaskGroup(of: Void.self) { children in
                            for child in 0..<10 {
                                children.addTask {
                                    await inChild(kinds[child % kinds.count]) {
                                        for _ in 0..<Int.random(in: 0...5) { await Task.yield() }
                                        if policy != .shared {
                                            local.late = "child \(child) of \(request)"
                                        }
                                        for _ in 0..<Int.random(in: 0...5) { await Task.yield() }
                                        let ownLate = policy == .shared || local.late == "child \(child) of \(request)"
                                        if local.id != request || local.simple != "request \(request)" || !ownLate {
                                            let seen = "\(local.id) \(local.simple) \(local.late)"
                                            failures.append("request \(request) child \(child): \(seen)")
                                        }
                                    }
                                }
                            }
                        }
                        if local.id != request || local.late != Sample.initial {
                            failures.append("request \(request) owner: \(local.id) \(local.late)")
                        }
                    }
                }
            }
        }
        #expect(failures.values.count == 0, "\(failures.values.prefix(5))")
    }
}
