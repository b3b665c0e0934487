/// A string-keyed bag of attributes, for `threading.local`-style code that adds attributes as it
/// goes instead of declaring a struct.
///
/// ```swift
/// let local = Local { Attributes() }
/// local.symbol = "@"                       // set
/// let symbol: String? = local.symbol       // typed read: nil if absent or of another type
/// local.symbol = String?.none              // assigning nil removes the attribute
/// ```
///
/// Reads are typed by the context: a read as `String?` of an attribute that holds an `Int` gives
/// nil. Prefer a struct with declared fields where you can: it is checked by the compiler and
/// faster (no dictionary, no dynamic casts).
@dynamicMemberLookup
public struct Attributes: Sendable {
    private var storage: [String: any Sendable] = [:]

    /// An empty set of attributes.
    public init() {}

    /// The attribute `name` as a `T`, or nil when it is absent or holds another type. Assigning
    /// nil removes it.
    public subscript<T: Sendable>(dynamicMember name: String) -> T? {
        get { storage[name] as? T }
        set { storage[name] = newValue }
    }

    /// The attribute `name` of whatever type it holds, or nil when absent. Assigning nil removes it.
    public subscript(name: String) -> (any Sendable)? {
        get { storage[name] }
        set { storage[name] = newValue }
    }

    /// The names of the attributes present, sorted.
    public var names: [String] { storage.keys.sorted() }

    /// How many attributes are present.
    public var count: Int { storage.count }

    /// Removes the attribute `name` and returns its value, or nil if it was absent.
    @discardableResult
    public mutating func removeValue(forName name: String) -> (any Sendable)? {
        storage.removeValue(forKey: name)
    }

    /// Removes every attribute.
    public mutating func removeAll() {
        storage.removeAll()
    }
}

extension Attributes: CustomStringConvertible {
    public var description: String {
        "Attributes(" + names.map { "\($0): \(storage[$0]!)" }.joined(separator: ", ") + ")"
    }
}
