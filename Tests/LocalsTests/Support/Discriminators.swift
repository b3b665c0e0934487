// Custom discriminators several test files use.

import Locals

/// Keys values by a session id bound with a task-local, as a server would.
struct SessionDiscriminator: Discriminator {
    @TaskLocal static var session: String?
    var currentKey: String? { Self.session }
}

/// A key whose hash is the same for every instance: only `==` tells keys apart.
struct CollidingKey: Hashable, Sendable {
    let id: Int
    static func == (a: CollidingKey, b: CollidingKey) -> Bool { a.id == b.id }
    func hash(into hasher: inout Hasher) { hasher.combine(0) }
}

struct CollidingDiscriminator: Discriminator {
    @TaskLocal static var key: CollidingKey?
    var currentKey: CollidingKey? { Self.key }
}

/// A discriminator whose current key is a Double: NaN is a value of the key type.
struct DoubleDiscriminator: Discriminator {
    @TaskLocal static var key: Double?
    var currentKey: Double? { Self.key }
}

/// A session key that runs a hook (once) the next time it is hashed: user code at the points
/// where the library hashes a key, e.g. between a session scope's swap and the note of its open.
struct HookKey: Hashable, Sendable {
    let name: String
    static let hook = Protected<(@Sendable () -> Void)?>(nil)

    static func == (a: HookKey, b: HookKey) -> Bool { a.name == b.name }

    func hash(into hasher: inout Hasher) {
        if let hook = Self.hook.withLock({ hook in defer { hook = nil }; return hook }) {
            hook()
        }
        hasher.combine(name)
    }
}

struct HookKeyDiscriminator: Discriminator {
    @TaskLocal static var key: HookKey?
    var currentKey: HookKey? { Self.key }
}
