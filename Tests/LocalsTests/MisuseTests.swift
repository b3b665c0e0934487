import Foundation
import Locals
import Testing

/// A value type with a distinctive name, to find in the stop messages.
struct MisuseValue: Sendable {
    var name = "initial"
}

/// A custom discriminator that never has a current key.
struct NoKeyDiscriminator: Discriminator {
    var currentKey: Int? { nil }
}

/// Locals whose initializer touches the same Local for the same key.
enum Reentrant {
    static let task: Local<MisuseValue> = Local { MisuseValue(name: Reentrant.task.name) }
    static let thread: Local<MisuseValue> = Local(.thread) { MisuseValue(name: Reentrant.thread.name) }
    static let session: Local<MisuseValue> = Local(SessionDiscriminator()) {
        var value = MisuseValue()
        Reentrant.session.update { value.name = $0.name }
        return value
    }
}

/// A discriminator whose key depends on the very Local it keys: it would recurse without end.
struct SelfReferentialDiscriminator: Discriminator {
    var currentKey: String? { "user-" + SelfReferential.local.name }
}

enum SelfReferential {
    static let local = Local(SelfReferentialDiscriminator()) { MisuseValue() }
}

@Suite("Misuse: the documented stops, and nothing else traps")
struct MisuseTests {
    // MARK: Stop 1: a write with no current key

    #if compiler(>=6.2)
    @Test("a write through a custom discriminator whose currentKey is nil stops, naming types and fix")
    func writeWithoutKeyStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let local = Local(NoKeyDiscriminator()) { MisuseValue() }
            local.name = "written"
        }
        let message = standardError(of: result)
        #expect(message.contains("MisuseValue"))
        #expect(message.contains("NoKeyDiscriminator"))
        #expect(message.contains("currentKey"))
    }

    @Test("assigning value and update with no current key stop too")
    func otherWritesWithoutKeyStop() async {
        let viaValue = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let local = Local(NoKeyDiscriminator()) { MisuseValue() }
            local.value = MisuseValue(name: "whole")
        }
        #expect(standardError(of: viaValue).contains("MisuseValue"))
        let viaUpdate = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let local = Local(NoKeyDiscriminator()) { MisuseValue() }
            local.update { $0.name = "updated" }
        }
        #expect(standardError(of: viaUpdate).contains("MisuseValue"))
    }
    #endif

    // MARK: Stop 2: an initializer that touches its own Local for the same key

    #if compiler(>=6.2)
    @Test("an initializer that touches the same Local for the same key stops (in a task)")
    func reentrantInitializerInTask() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = await Task { Reentrant.task.name }.value
        }
        let message = standardError(of: result)
        #expect(message.contains("MisuseValue"))
        #expect(message.contains("initializer"))
    }

    @Test("an initializer that touches the same Local for the same key stops (.thread, custom)")
    func reentrantInitializerOtherDiscriminators() async {
        let thread = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = Reentrant.thread.name
        }
        #expect(standardError(of: thread).contains("MisuseValue"))
        let session = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            SessionDiscriminator.$session.withValue("s") { _ = Reentrant.session.name }
        }
        let message = standardError(of: session)
        #expect(message.contains("MisuseValue"))
        #expect(message.contains("SessionDiscriminator"))
    }
    #endif

    // MARK: Nothing else traps

    @Test("reads, reset and discard with no current key do not trap")
    func noKeyReadsAreFine() {
        let local = Local(NoKeyDiscriminator()) { MisuseValue() }
        #expect(local.name == "initial")
        #expect(local.value.name == "initial")
        local.reset()
        local.discard(key: 1)
    }

    @Test("discarding keys that were never stored is ignored")
    func discardUnknownKeys() async {
        let task = Local { Sample() }
        let thread = Local(.thread) { Sample() }
        let finishedTask = await Task { TaskID.current! }.value
        let deadThread = await onNewThread { ThreadID.current }
        task.simple = "kept"
        task.discard(key: finishedTask)
        task.discard(key: deadThread)
        task.discard(key: TaskDiscriminator.Key.task(finishedTask))
        #expect(task.simple == "kept")
        // A .thread Local is used from a plain thread: a task may change threads at an await.
        let kept = await onNewThread { () -> String in
            thread.simple = "kept"
            thread.discard(key: deadThread)
            thread.discard(key: TaskDiscriminator.Key.thread(deadThread))
            return thread.simple
        }
        #expect(kept == "kept")
    }

    #if compiler(>=6.2)
    @Test("a custom discriminator whose currentKey touches the same Local stops, naming the discriminator")
    func recursiveDiscriminatorStops() async {
        let result = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            _ = SelfReferential.local.name
        }
        let message = standardError(of: result)
        #expect(message.contains("SelfReferentialDiscriminator.currentKey"), "\(message)")
    }

    @Test("discard(key:) with a key of a type the discriminator never produces stops, naming both types")
    func discardOfAnotherTypeStops() async {
        let session = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let cart = Local(SessionDiscriminator()) { MisuseValue() }
            cart.discard(key: 42)
        }
        let sessionMessage = standardError(of: session)
        #expect(sessionMessage.contains("Int"))
        #expect(sessionMessage.contains("String"))
        #expect(sessionMessage.contains("SessionDiscriminator"))
        let task = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            Local { MisuseValue() }.discard(key: "a session id")
        }
        let taskMessage = standardError(of: task)
        #expect(taskMessage.contains("String"))
        #expect(taskMessage.contains("TaskID"))
        let thread = await #expect(processExitsWith: .failure, observing: [\.standardErrorContent]) {
            let perThread = Local(.thread) { MisuseValue() }
            perThread.discard(key: await Task { TaskID.current! }.value)
        }
        let threadMessage = standardError(of: thread)
        #expect(threadMessage.contains("TaskID"))
        #expect(threadMessage.contains("ThreadID"))
    }
    #endif

    @Test("update may touch other Locals inside its closure")
    func updateTouchesOtherLocals() {
        let a = Local(inheritance: .shared) { Sample() }
        let b = Local { Sample() }
        a.withScope {
            a.update { value in
                b.count += 1
                value.count = b.count
            }
            #expect(a.count == 1)
        }
        a.update { $0.simple = b.simple }
        #expect(a.simple == Sample.initial)
    }

    @Test("a touch after the Local's own scope ended, and deeply mixed scopes, do not trap")
    func mixedScopes() async {
        let a = Local { Sample() }
        let b = Local(inheritance: .shared) { Sample() }
        await a.withValue(\.id, 1) {
            await b.withValue(\.id, 2) {
                await a.withValue(\.id, 3) {
                    #expect((a.id, b.id) == (3, 2))
                    await Task { a.reset(); b.reset() }.value
                }
                #expect(b.id == -1, "under .shared a child's reset resets the scope's value")
            }
            #expect(a.id == 1)
        }
        #expect((a.id, b.id) == (-1, -1))
    }
}
