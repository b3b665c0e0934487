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
