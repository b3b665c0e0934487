import Foundation
import Locals
import Testing

@Suite("A session or .thread scope around a discard")
struct SwappedScopeDiscardTests {
    /// A session discarded inside a scope stays discarded, also when it is touched again before
    /// the scope ends: that touch makes new storage (from the initializer), which the scope's end
    /// must not take for the storage it started on.
    @Test("a session discarded inside a scope and touched again stays discarded")
    func sessionDiscardedInsideScopeComesBack() {
        let x = Local(SessionDiscriminator()) { "initial" }
        let after = SessionDiscriminator.$session.withValue("K") { () -> String in
            x.value = "before the scope"
            x.withValue(\.self, "scoped") {
                x.discard(key: "K")
                _ = x.value  // the session starts over: "initial"
            }
            return x.value
        }
        #expect(after == "initial")
    }

    /// The same for a `.thread` Local whose thread's key is discarded inside its scope.
    @Test("a .thread value discarded inside a scope and touched again stays discarded")
    func threadValueDiscardedInsideScopeStaysDiscarded() async {
        let x = Local(ThreadDiscriminator()) { "initial" }
        let after = await onNewThread { () -> String in
            x.value = "before the scope"
            x.withValue(\.self, "scoped") {
                x.discard(key: ThreadID.current)
                _ = x.value  // "initial"
            }
            return x.value
        }
        #expect(after == "initial")
    }

    /// What the code inside a scope does to the key's storage, one step at a time.
    enum Step: String, CustomTestStringConvertible {
        case reset, discard, touch
        var testDescription: String { rawValue }
    }

    /// Runs `steps` inside a scope of a session or `.thread` Local whose value was "before the
    /// scope", on a thread of its own; returns the value after the scope.
    private func valueAfterScope(session: Bool, _ steps: [Step]) async -> String {
        let x = session ? Local(SessionDiscriminator()) { "initial" } : Local(ThreadDiscriminator()) { "initial" }
        return await onNewThread { () -> String in
            SessionDiscriminator.$session.withValue("K") { () -> String in
                x.value = "before the scope"
                x.withValue(\.self, "scoped") {
                    for step in steps {
                        switch step {
                        case .reset: x.reset()
                        case .discard: session ? x.discard(key: "K") : x.discard(key: ThreadID.current)
                        case .touch: x.value += " touched"
                        }
                    }
                }
                return x.value
            }
        }
    }

    /// Unlike a discard, a reset inside the scope replaces the scope's value only: the scope puts
    /// the value from before it back when it ends, into the storage the touch made again, or into
    /// storage made for it when nothing touched the key after the reset.
    @Test(
        "a session or .thread value reset inside a scope is restored",
        arguments: [false, true], [[Step.reset], [.reset, .touch], [.touch, .reset, .touch, .reset]]
    )
    func resetInsideScopeIsRestored(session: Bool, steps: [Step]) async {
        #expect(await valueAfterScope(session: session, steps) == "before the scope")
    }

    /// A discard anywhere inside the scope wins over any reset around it: the key's storage after
    /// the scope is what the code inside made of it (from the initializer), never the value from
    /// before the scope.
    @Test(
        "a session or .thread value discarded inside a scope stays discarded, whatever else happened",
        arguments: [false, true], [
            [Step.reset, .touch, .discard, .touch], [.reset, .discard], [.reset, .discard, .touch],
            [.discard, .touch, .reset, .touch], [.discard, .reset],
        ]
    )
    func discardWinsOverReset(session: Bool, steps: [Step]) async {
        let expected = steps.last == .touch ? "initial touched" : "initial"
        #expect(await valueAfterScope(session: session, steps) == expected)
    }

    /// Nested scopes: a discard inside the inner one reaches the outer one too, and a scope on
    /// the same key opened after the discard restores as usual.
    @Test("a discard inside an inner scope keeps both scopes from restoring", arguments: [false, true])
    func discardInInnerScope(session: Bool) async {
        let x = session ? Local(SessionDiscriminator()) { "initial" } : Local(ThreadDiscriminator()) { "initial" }
        let (inner, after) = await onNewThread { () -> (String, String) in
            SessionDiscriminator.$session.withValue("K") { () -> (String, String) in
                x.value = "before"
                var inner = ""
                x.withValue(\.self, "outer") {
                    x.withValue(\.self, "inner") {
                        x.reset()
                        x.value = "written"
                        session ? x.discard(key: "K") : x.discard(key: ThreadID.current)
                    }
                    x.withValue(\.self, "second") {}  // opened after the discard: restores
                    inner = x.value
                }
                return (inner, x.value)
            }
        }
        #expect(inner == "initial")
        #expect(after == "initial")
    }
}
