// A guided tour of swift-locals: `swift run locals-demo`.
//
// Each section prints what it does and what it shows; every value printed is read back from the
// library, nothing is hard-coded.

import Foundation
import Locals
import Synchronization

struct RequestState: Sendable {
    var requestID = "-"
    var user: String? = nil
    var depth = 0
}

/// Counts how often an initializer runs.
final class Counter: Sendable {
    private let count = Atomic(0)
    func increment() { count.add(1, ordering: .relaxed) }
    var value: Int { count.load(ordering: .relaxed) }
}

let initializerCalls = Counter()
let request = Local(name: "request") {
    initializerCalls.increment()
    return RequestState()
}

func section(_ title: String, _ explanation: String) {
    print("\n== \(title) ==")
    print(explanation)
}

func show(_ label: String, _ value: Any) {
    print("  \(label.padding(toLength: 44, withPad: " ", startingAt: 0)) \(value)")
}

// MARK: 1. Per-task values

func perTaskIsolation() async {
    section(
        "1. One value per task",
        "Five tasks write their own request ID, yield, and read it back; the main task's is untouched."
    )
    // In a scope, as a request's middleware would: children created inside inherit from it.
    await request.withValue(\.requestID, "main") {
        let seen = await withTaskGroup(of: (Int, String).self) { group in
            for index in 1...5 {
                group.addTask {
                    request.requestID = "req-\(index)"
                    await Task.yield()  // may resume on another thread
                    return (index, request.requestID)
                }
            }
            return await group.reduce(into: [:]) { $0[$1.0] = $1.1 }
        }
        for index in 1...5 {
            show("task \(index) wrote req-\(index), reads", seen[index]!)
        }
        show("main task reads", request.requestID)
    }
}

// MARK: 2. The initializer

func initializer() async {
    section(
        "2. The initializer runs once per task, on first touch",
        "Like a threading.local subclass __init__: lazily, on the first read or write of each task."
    )
    let before = initializerCalls.value
    await withTaskGroup(of: Void.self) { group in
        for _ in 1...3 { group.addTask { _ = request.depth } }  // a read counts as a touch
        for _ in 1...2 { group.addTask { await Task.yield() } }  // never touch the Local
    }
    show("3 tasks read, 2 did not: initializer calls", initializerCalls.value - before)
    let task = Task {
        request.depth = 7
        let calls = initializerCalls.value
        request.reset()
        return (request.depth, initializerCalls.value - calls)
    }
    let (depth, calls) = await task.value
    show("after reset(), depth reads", depth)
    show("and the initializer ran again", "\(calls) time")
}

// MARK: 3. Threads

func threads() {
    section(
        "3. Threads",
        """
        Local(.thread) keeps one value per OS thread, like threading.local. The default .task Local \
        also falls back to one value per thread in code outside any task; a debug build says so once \
        per Local, on standard error, since on a pool's thread that is seldom what was meant.
        """
    )
    let perThread = Local(.thread) { Attributes() }
    perThread.name = "main thread"
    let done = DispatchSemaphore(value: 0)
    let results = Mutex<[String]>([])
    for index in 1...3 {
        let thread = Thread {
            let initial: String? = perThread.name
            perThread.name = "thread \(index)"
            request.requestID = "thread-\(index) (no task)"
            let line = "thread \(index): first read \(initial ?? "nil"), then \(perThread.name ?? "nil"); "
                + ".task Local reads \(request.requestID)"
            results.withLock { $0.append(line) }
            done.signal()
        }
        thread.start()
        done.wait()
    }
    for line in results.withLock({ $0 }) {
        print("  \(line)")
    }
    show("main thread still reads", perThread.name ?? "nil")
}

// MARK: 4. Sessions

struct SessionDiscriminator: Discriminator {
    @TaskLocal static var sessionID: String?
    var currentKey: String? { Self.sessionID }
}

struct Cart: Sendable {
    var items: [String] = []
}

func sessions() async {
    section(
        "4. A custom discriminator: one cart per session",
        "Any Hashable key works; values live until discard(key:). With no key, reads get a fresh value."
    )
    let cart = Local(SessionDiscriminator()) { Cart() }
    await SessionDiscriminator.$sessionID.withValue("alice") {
        cart.items.append("book")
        await Task.yield()
        cart.items.append("pen")
    }
    SessionDiscriminator.$sessionID.withValue("bob") {
        cart.items.append("lamp")
    }
    SessionDiscriminator.$sessionID.withValue("alice") {
        show("alice's cart, from a later request", cart.items)
    }
    SessionDiscriminator.$sessionID.withValue("bob") {
        show("bob's cart", cart.items)
    }
    show("no session: reads", cart.items)
    cart.discard(key: "alice")
    SessionDiscriminator.$sessionID.withValue("alice") {
        show("alice's cart after discard(key:)", cart.items)
    }
}

// MARK: 5. Attributes

func attributes() {
    section(
        "5. Attributes: threading.local-style, untyped",
        "Local { Attributes() } takes any attribute name; reads are typed by context, nil removes."
    )
    let local = Local { Attributes() }
    local.symbol = "@"
    local.retries = 3
    let symbol: String? = local.symbol
    let wrongType: Int? = local.symbol
    show("local.symbol as String?", symbol ?? "nil")
    show("local.symbol as Int? (other type)", wrongType.map(String.init) ?? "nil")
    show("names", local.names)
    local.symbol = String?.none
    show("after local.symbol = nil, names", local.names)
}

// MARK: 6. Scopes

func scopes() async {
    section(
        "6. Scopes bind a value for an operation and restore it",
        "withValue / withValues restore on return, on a thrown error and on cancellation; they nest."
    )
    request.requestID = "outer"
    await request.withValue(\.requestID, "scoped") {
        show("inside withValue", request.requestID)
        request.withValue(\.requestID, "nested") {
            show("inside a nested scope", request.requestID)
        }
        request.requestID = "written inside"
        show("owner writes inside the scope", request.requestID)
        async let child = request.requestID
        show("an async let child inherits", await child)
    }
    show("after the scope (writes inside dropped)", request.requestID)
    struct Failure: Error {}
    do {
        try request.withValue(\.requestID, "failing") { throw Failure() }
    } catch {
        show("after a thrown error", request.requestID)
    }
    await request.withScope {
        request.user = "ann"
        let fromTask = await Task { request.user ?? "nil" }.value
        show("withScope: assignment reaches a Task {}", fromTask)
        let detached = await Task.detached { request.user ?? "nil" }.value
        show("but never Task.detached", detached)
    }
}

// MARK: 7. Inheritance policies

struct Shopping: Sendable {
    var simple = "initial"
    var late = "initial"
    var list = ["initial", "initial"]
}

func policies() async {
    section(
        "7. How child tasks inherit (the aiotask-context task factories, in Swift)",
        """
        The owner opens withValues({ simple = "from parent"; list = ["from", "parent"] }), creates a \
        child, and after the child's first read sets late = "after spawn". The child reads late, sets \
        simple = "from child" and list[1] = "child"; the owner awaits it and reads.
        """
    )
    let columns = ["policy", "child's first simple", "child's late", "owner's simple", "owner's list"]
    print("  " + columns.map { $0.padding(toLength: 21, withPad: " ", startingAt: 0) }.joined(separator: " "))
    for policy: Inheritance in [.copy, .overlay, .shared, .fresh] {
        let local = Local(inheritance: policy) { Shopping() }
        let row = await local.withValues({ $0.simple = "from parent"; $0.list = ["from", "parent"] }) {
            let (firstRead, firstReadDone) = AsyncStream<Void>.makeStream()
            let (lateSet, lateSetDone) = AsyncStream<Void>.makeStream()
            let child = Task {
                let first = local.simple
                firstReadDone.yield()
                for await _ in lateSet { break }
                let late = local.late
                local.simple = "from child"
                local.list[1] = "child"
                return (first, late)
            }
            for await _ in firstRead { break }
            local.late = "after spawn"
            lateSetDone.yield()
            let (first, late) = await child.value
            return [".\(policy)", first, late, local.simple, local.list.joined(separator: ", ")]
        }
        print("  " + row.map { $0.padding(toLength: 21, withPad: " ", startingAt: 0) }.joined(separator: " "))
    }
}

// MARK: 8. Snapshots

func snapshots() async {
    section(
        "8. Snapshots carry values into callbacks and queues",
        "A DispatchQueue block runs outside any task: it sees the queue thread's value, not the request's. "
            + "LocalsSnapshot.capture() takes every Local's value; run puts it back, anywhere."
    )
    let queue = DispatchQueue(label: "demo")
    await request.withValue(\.requestID, "r-42") {
        let snapshot = LocalsSnapshot.capture()
        let (plain, captured) = await withCheckedContinuation { continuation in
            queue.async {
                continuation.resume(returning: (request.requestID, snapshot.run { request.requestID }))
            }
        }
        show("a plain queue.async block reads", plain)
        show("the same block, inside snapshot.run", captured)
        let helper = await withCheckedContinuation { continuation in
            queue.asyncWithLocals { continuation.resume(returning: request.requestID) }
        }
        show("queue.asyncWithLocals { ... } reads", helper)
        // The empty snapshot: background work started from the request keeps none of its values.
        let background = LocalsSnapshot().run { request.requestID }
        show("inside LocalsSnapshot().run (no request)", background)
        print("  where each value came from (debugDescription):")
        for line in snapshot.debugDescription.split(separator: "\n").dropFirst() {
            print("   " + line)
        }
    }
}

// MARK: 9. Carried task-locals and fields

/// A task-local of the application's own, such as a trace id.
enum Trace {
    @TaskLocal static var id = "none"
}

func carriedAndFields() async {
    section(
        "9. Snapshots carry @TaskLocals too; LocalField names a value for logs and integrations",
        "LocalsSnapshot.carry(Trace.$id) registers a task-local once; later snapshots capture and bind it. "
            + "A LocalField reads one attribute as text, where it is asked: what log metadata and headers use."
    )
    LocalsSnapshot.carry(Trace.$id)
    let queue = DispatchQueue(label: "demo-carry")
    let field = LocalField("request-id", of: request, at: \.requestID)
    let (plain, carried, text) = await Trace.$id.withValue("t-7") {
        await request.withValue(\.requestID, "r-43") {
            let snapshot = LocalsSnapshot.capture()
            return await withCheckedContinuation { continuation in
                queue.async {
                    let inside = snapshot.run { (Trace.id, field.currentValue ?? "nil") }
                    continuation.resume(returning: (Trace.id, inside.0, inside.1))
                }
            }
        }
    }
    show("a plain queue block reads Trace.id", plain)
    show("inside snapshot.run, Trace.id", carried)
    show("inside snapshot.run, the field \"\(field.key)\"", text)
    print("  The integrations (swift-log, tracing, NIO, Hummingbird, Vapor, gRPC, OpenAPI) take such fields;")
    print("  each is a product of this package behind a trait: see \"Integrations\" in README.md.")
}

// MARK: 10. The runtime

func runtimeSupport() {
    section(
        "10. What swift-locals confirmed about this Swift runtime",
        "Task identity is asked of the runtime itself and checked once, at first use (TaskDiscriminator.support)."
    )
    for line in TaskDiscriminator.support.description.split(separator: "\n") {
        print("  " + line)
    }
}

@main
enum Demo {
    static func main() async {
        print("swift-locals: threading.local for Swift Concurrency. A guided tour.")
        await perTaskIsolation()
        await initializer()
        threads()
        await sessions()
        attributes()
        await scopes()
        await policies()
        await snapshots()
        await carriedAndFields()
        runtimeSupport()
        print("\nMore: README.md and the DocC articles in Sources/Locals/Locals.docc.")
    }
}
