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

    /// Unlike a discard, a reset inside the scope replaces the scope's value only: the scope puts
    /// the value from before it back when it ends, into the storage the touch made again.
    @Test("a session or .thread value reset inside a scope and touched again is restored", arguments: [false, true])
    func resetInsideScopeIsRestored(session: Bool) async {
        let x = session ? Local(SessionDiscriminator()) { "initial" } : Local(ThreadDiscriminator()) { "initial" }
        let after = await onNewThread { () -> String in
            SessionDiscriminator.$session.withValue("K") { () -> String in
                x.value = "before the scope"
                x.withValue(\.self, "scoped") {
                    x.reset()
                    _ = x.value  // "initial"
                }
                return x.value
            }
        }
        #expect(after == "before the scope")
    }
}
