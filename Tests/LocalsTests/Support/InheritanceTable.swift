// What a child sees under each policy: the table the inheritance tests and the model check
// compare with.

import Locals

/// One row of the table of what a child sees under each policy (the table in the `Inheritance`
/// documentation): the child's first read, its read of a write its owner made after creating it,
/// and what the owner reads after the child wrote.
struct TableRow: Equatable, CustomStringConvertible {
    var childFirstSimple: String
    var childLate: String
    var ownerSimpleAfter: String
    var ownerListAfter: [String]

    var description: String {
        "child first read \(childFirstSimple), child late \(childLate), "
            + "owner after \(ownerSimpleAfter) \(ownerListAfter)"
    }

    /// What the table says each policy gives.
    static func expected(_ policy: Inheritance) -> TableRow {
        let parentList = ["from", "parent"]
        return switch policy {
        case .copy: TableRow(childFirstSimple: "from parent", childLate: Sample.initial,
                             ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        case .overlay: TableRow(childFirstSimple: "from parent", childLate: "after spawn",
                                ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        case .shared: TableRow(childFirstSimple: "from parent", childLate: "after spawn",
                               ownerSimpleAfter: "from child", ownerListAfter: ["from", "child"])
        case .fresh: TableRow(childFirstSimple: Sample.initial, childLate: Sample.initial,
                              ownerSimpleAfter: "from parent", ownerListAfter: parentList)
        }
    }
}

extension Inheritance {
    /// Every policy, for parameterized tests (kept here: the library makes no promise to list them).
    static let all: [Inheritance] = {
        let all: [Inheritance] = [.copy, .overlay, .shared, .fresh]
        // A new policy fails to compile here until it is listed above.
        for policy in all {
            switch policy {
            case .copy, .overlay, .shared, .fresh: break
            }
        }
        return all
    }()
}
