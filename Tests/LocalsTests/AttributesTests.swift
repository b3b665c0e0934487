import Locals
import Testing

@Suite("Attributes: string-keyed, threading.local-style values")
struct AttributesTests {
    @Test("set and typed read through a Local")
    func setAndRead() {
        let local = Local { Attributes() }
        local.symbol = "@"
        local.retries = 3
        let symbol: String? = local.symbol
        let retries: Int? = local.retries
        let missing: String? = local.missing
        #expect(symbol == "@")
        #expect(retries == 3)
        #expect(missing == nil)
    }

    @Test("a read as another type gives nil")
    func wrongTypeReadsNil() {
        var attributes = Attributes()
        attributes.symbol = "@"
        let asInt: Int? = attributes.symbol
        let asString: String? = attributes.symbol
        #expect(asInt == nil)
        #expect(asString == "@")
    }

    @Test("assigning nil removes the attribute")
    func nilRemoves() {
        let local = Local { Attributes() }
        local.symbol = "@"
        local.other = 1
        #expect(local.value.count == 2)
        local.symbol = String?.none
        let symbol: String? = local.symbol
        #expect(symbol == nil)
        #expect(local.value.names == ["other"])
        #expect(local.value.count == 1)
    }

    @Test("names are sorted and count counts them")
    func namesAndCount() {
        var attributes = Attributes()
        #expect(attributes.names.isEmpty)
        #expect(attributes.count == 0)
        attributes.zeta = 1
        attributes.alpha = "a"
        attributes.mid = 2.5
        attributes.Beta = true
        #expect(attributes.names == ["Beta", "alpha", "mid", "zeta"])
        #expect(attributes.count == 4)
        attributes.alpha = "again"  // replacing does not add
        #expect(attributes.count == 4)
    }

    @Test("the untyped subscript reads and writes any Sendable")
    func untypedSubscript() {
        var attributes = Attributes()
        attributes["n"] = 5
        #expect(attributes["n"] as? Int == 5)
        #expect(attributes["absent"] == nil)
        attributes["n"] = nil
        #expect(attributes.count == 0)
    }

    @Test("removeValue returns the removed value; removeAll empties")
    func removal() {
        var attributes = Attributes()
        attributes.a = 1
        attributes.b = "two"
        #expect(attributes.removeValue(forName: "a") as? Int == 1)
        #expect(attributes.removeValue(forName: "a") == nil)
        #expect(attributes.names == ["b"])
        attributes.removeAll()
        #expect(attributes.count == 0)
        #expect(attributes.names.isEmpty)
    }

    @Test("each task has its own attributes")
    func perTask() async {
        let local = Local { Attributes() }
        local.owner = "test"
        let seen = await withTaskGroup(of: (Int, [String], Int?).self) { group in
            for i in 0..<20 {
                group.addTask {
                    let before = local.value.names
                    local.index = i
                    await Task.yield()
                    let index: Int? = local.index
                    return (i, before, index)
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
        #expect(seen.count == 20)
        for (i, before, index) in seen {
            #expect(before.isEmpty)
            #expect(index == i)
        }
        #expect(local.value.names == ["owner"])
    }

    @Test("attributes flow into a scope and are restored after it")
    func inScope() async {
        let local = Local { Attributes() }
        local.user = "ann"
        await local.withValues({ $0.user = "bob" }) {
            let user: String? = local.user
            #expect(user == "bob")
            let child: String? = await Task { local.user }.value
            #expect(child == "bob")
        }
        let user: String? = local.user
        #expect(user == "ann")
    }
}
