import Locals

struct RequestState: Sendable {
    var requestID = "-"
    var list = ["a", "b"]
    var depth = 0
    var requestID2 = "initial"
}
let request = Local { RequestState() }

@main struct Demo {
    static func main() async {
        request.requestID = "main"
        await withTaskGroup(of: String.self) { group in
            for i in 0..<5 {
                group.addTask {
                    request.requestID = "task \(i)"
                    await Task.yield()
                    return request.requestID
                }
            }
            for await r in group { print(r) }
        }
        print("main still", request.requestID)
        await request.withValues({ $0.requestID = "scoped" }) {
            async let a = request.requestID
            let t = Task { request.requestID }
            print("async let sees", await a, "task sees", await t.value)
        }
        print("after scope", request.requestID)
        for p in Inheritance.allCases {
            let l = Local(inheritance: p) { RequestState() }
            await l.withValues({ $0.requestID = "from parent"; $0.list = ["from", "parent"] }) {
                let (c1, c2) = (AsyncStream<Void>.makeStream(), AsyncStream<Void>.makeStream())
                let child = Task { () -> (String, String) in
                    let first = l.requestID
                    c1.continuation.yield()
                    for await _ in c2.stream { break }
                    let late = l.user
                    l.requestID = "from child"
                    l.list[1] = "child"
                    return (first, late)
                }
                for await _ in c1.stream { break }
                l.user = "after spawn"
                c2.continuation.yield()
                let (first, late) = await child.value
                print(p, first, late, l.requestID, l.list)
            }
        }
    }
}
extension RequestState { var user: String { get { requestID2 } set { requestID2 = newValue } } }
