// What a snapshot took of the carried contexts (see `LocalsSnapshot.carry(_:)`), and how `run`
// binds it.

/// The values of the carried contexts that a snapshot took, bound by `run`.
struct CarriedValues: Sendable {
    /// The entries: one or two in place (the integrations register two), so that a capture
    /// allocates no array for them.
    private enum Entries {
        case none
        case one(CarriedEntry)
        case two(CarriedEntry, CarriedEntry)
        case many([CarriedEntry])
    }

    private let entries: Entries

    init() {
        entries = .none
    }

    /// The values `list`'s carriers take (`unbound`: outside every task and binding).
    init(_ list: CarrierList, unbound: Bool = false) {
        let carriers = list.carriers
        func take(_ index: Int) -> CarriedEntry {
            unbound ? carriers[index].unbound() : carriers[index].capture()
        }
        switch carriers.count {
        case 0: entries = .none
        case 1: entries = .one(take(0))
        case 2: entries = .two(take(0), take(1))
        default: entries = .many(carriers.indices.map(take))
        }
    }

    var isEmpty: Bool {
        if case .none = entries { true } else { false }
    }

    private var all: [CarriedEntry] {
        switch entries {
        case .none: []
        case .one(let first): [first]
        case .two(let first, let second): [first, second]
        case .many(let all): all
        }
    }

    /// One line per context, for a snapshot's debug description.
    var listings: [String] { all.map(\.listing) }

    /// Runs `body` with every value bound.
    func run(_ body: () -> Void) {
        switch entries {
        case .none: body()
        case .one(let first): first.enter(body)
        case .two(let first, let second): first.enter { second.enter(body) }
        case .many(let all): Self.run(all[...], body)
        }
    }

    private static func run(_ entries: ArraySlice<CarriedEntry>, _ body: () -> Void) {
        guard let first = entries.first else { return body() }
        first.enter { run(entries.dropFirst(), body) }
    }

    /// Runs `body` on `isolation` with every value bound.
    func run(isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        await Self.run(all[...], isolation: isolation, body)
    }

    private static func run(
        _ entries: ArraySlice<CarriedEntry>, isolation: isolated (any Actor)?, _ body: () async -> Void
    ) async {
        guard let first = entries.first else { return await body() }
        await first.enter(isolation) { await run(entries.dropFirst(), isolation: isolation, body) }
    }
}

/// One context's value in a snapshot, with its type hidden: a class, so that `run` binds it
/// in place through its class (an existential copied out of a value is copied through its type's
/// witnesses, on every run).
@usableFromInline
class CarriedEntry: @unchecked Sendable {
    // @unchecked: the subclass's stored properties are immutable and Sendable.
    @usableFromInline
    init() {}

    var listing: String { preconditionFailure("overridden") }
    func enter(_ body: () -> Void) { preconditionFailure("overridden") }
    func enter(_ isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        preconditionFailure("overridden")
    }
}

@usableFromInline
final class Carried<Context: CarriedContext>: CarriedEntry, @unchecked Sendable {
    @usableFromInline let context: Context
    @usableFromInline let value: Context.Value

    @inlinable
    init(context: Context, value: Context.Value) {
        self.context = context
        self.value = value
        super.init()
    }

    override var listing: String { "\(context) = \(value) (carried)" }

    override func enter(_ body: () -> Void) {
        context.withValue(value, operation: body)
    }

    override func enter(_ isolation: isolated (any Actor)?, _ body: () async -> Void) async {
        await context.withValue(value, isolation: isolation, operation: body)
    }
}
