// The test-only switch LOCALS_FORCE_FALLBACK, which makes runtime checks fail so that a test run
// exercises their fallbacks. Each test sets it in a process of its own, before the first use of a
// `.task` Local, where the library reads it.

import Foundation
import Locals
import Testing

@Suite("LOCALS_FORCE_FALLBACK: a test switch that forces fallbacks, never a stop")
struct ForcedFallbackSwitchTests {
    #if compiler(>=6.2)
    @Test("naming taskIdentity, which has no fallback, is ignored: .task Locals keep working")
    func taskIdentityIsIgnored() async {
        await #expect(processExitsWith: .success) {
            setenv("LOCALS_FORCE_FALLBACK", "taskIdentity", 1)
            let local = Local { 0 }
            let seen = await Task { () -> Int in
                local.value = 5
                return local.value
            }.value
            exit(seen == 5 && TaskDiscriminator.support.taskIdentity.isConfirmed ? 0 : 1)
        }
    }

    #if DEBUG
    @Test("in debug builds (what swift test builds), taskEnd and asyncLetParent force their fallbacks")
    func fallbacksAreForced() async {
        await #expect(processExitsWith: .success) {
            setenv("LOCALS_FORCE_FALLBACK", "taskEnd, asyncLetParent", 1)
            let support = TaskDiscriminator.support
            let local = Local { 0 }
            let seen = await Task { () -> Int in
                local.value = 5
                return local.value
            }.value
            let forced = !support.taskEnd.isConfirmed && !support.asyncLetParent.isConfirmed
            exit(seen == 5 && forced && support.taskIdentity.isConfirmed ? 0 : 1)
        }
    }
    #endif
    #endif
}
