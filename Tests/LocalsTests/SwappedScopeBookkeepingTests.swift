import Foundation
@testable import Locals
import Testing

private struct Thrown: Error {}

/// How many keys have an entry in the Local's table of open swapped scopes.
private func openScopeEntries<V>(_ x: Local<V>) -> Int {
    switch x.backend.kind {
    case .tasks(let storage), .threads(let storage):
        storage.takeUnretainedValue().openScopes.count
    case .sessions(let storage):
        storage.takeUnretainedValue().openScopes.count
    }
}

@Suite("Session and .thread scopes leave nothing noted once they end")
struct SwappedScopeBookkeepingTests {
    @Test("concurrent session scopes with resets, discards and throws leave no open-scope entry")
    func sessionScopesLeaveNothing() async {
        let x = Local(SessionDiscriminator()) { 0 }
        await withTaskGroup(of: Void.self) { group in
            for task in 0..<16 {
                group.addTask {
                    await SessionDiscriminator.$session.withValue("S\(task % 3)") {
                        for i in 0..<200 {
                            _ = try? await x.withValue(\.self, i) { () async throws -> Void in
                                switch (i + task) % 5 {
                                case 0: x.reset()
                                case 1: x.discard(key: "S\((task + 1) % 3)")
                                case 2:
                                    try x.withValue(\.self, -i) { () throws -> Void in
                                        x.discard(key: "S\(task % 3)")
                                        throw Thrown()
                                    }
                                case 3: await Task.yield()
                                default: x.value += 1
                                }
                            }
                        }
                    }
                }
            }
        }
        #expect(openScopeEntries(x) == 0)
    }

    @Test("async .thread scopes that end on another thread leave no open-scope entry")
    func threadScopesLeaveNothing() async {
        let executor = AlternatingExecutor()
        defer { executor.stop() }
        let x = Local(ThreadDiscriminator()) { 0 }
        for round in 0..<20 {
            executor.send(to: round % 2)
            await Task(executorPreference: executor) {
                await x.withValue(\.self, round) {
                    if round % 3 == 0 { x.discard(key: ThreadID.current) }
                    executor.send(to: (round + 1) % 2)
                    try? await Task.sleep(nanoseconds: 100_000)
                }
            }.value
        }
        #expect(openScopeEntries(x) == 0)
    }
}
