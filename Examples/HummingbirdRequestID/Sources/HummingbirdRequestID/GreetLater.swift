import Hummingbird
import Locals
import Logging
import NIOCore

/// The work behind `GET /greet-later/{name}` and `GET /greet-later-naive/{name}`: the same greeting
/// as `/hello`, but part of the work runs in `EventLoopFuture` callbacks on ``ProfileStore``'s event
/// loop, and logs from there.
///
/// Such a callback runs on the loop's thread, outside the request's task: the middleware's scope
/// does not reach it, and outside any task a `.task` Local keys its values by the thread. Every
/// request's callbacks take turns on that one thread, so without help they all read one value:
/// whatever was last stored there. A ``LocalsSnapshot`` taken in the request's task and run around
/// each callback puts the request's own values back for the callback's duration.
enum GreetLater {
    /// `GET /greet-later/{name}`: each callback runs under a snapshot of the request's Locals, so
    /// every line it logs carries the request's id (and user), whatever ran on the loop before.
    static func withSnapshot(name: String, store: ProfileStore, logger: Logger) async throws -> String {
        currentRequest.user = name
        logger.info("greeting later", metadata: ["name": "\(name)"])
        // Taken here, in the request's task and inside the middleware's scope: the request's id and
        // user, and whatever any other Local holds for the request.
        let snapshot = LocalsSnapshot.capture()
        return try await store.profile(for: name)
            .map(snapshot.bind { profile in
                // On the store's loop thread, with the request's values in place until it returns.
                logger.info("profile loaded", metadata: ["name": "\(name)"])
                return profile
            })
            .flatMap { profile in
                store.later {
                    // A closure the loop runs later is a callback of its own: it needs the snapshot
                    // too, even when the code that scheduled it ran under one.
                    snapshot.run {
                        logger.info("greeting composed", metadata: ["name": "\(name)"])
                        return "\(profile.salutation), \(name). Your request id is \(currentRequest.id ?? "-")."
                    }
                }
            }
            .get()
    }

    /// `GET /greet-later-naive/{name}`: the same work without a snapshot, as code moved from the
    /// handler into callbacks tends to be written, plus the hand-made fix a developer reaches for
    /// on finding the id missing from those lines. Kept to show what goes wrong; do not copy it.
    static func naive(name: String, store: ProfileStore, logger: Logger) async throws -> String {
        currentRequest.user = name
        logger.info("greeting later", metadata: ["name": "\(name)"])
        let id = currentRequest.id
        return try await store.profile(for: name)
            .map { profile in
                // Outside the request's task, the metadata provider reads the loop thread's value:
                // whatever the last callback on this thread stored there, another request's id, or
                // none at all. Any line logged here before the assignment below (this one, or one a
                // library logs on its own loop) is attributed to some other request.
                logger.info("profile loaded", metadata: ["name": "\(name)"])
                // The hand-made fix: put the id back by assignment so that later lines have it.
                // Outside a task this writes the *thread's* value, and nothing ever takes it back:
                // it stays on the loop thread for the next request's callbacks to read, and any
                // other request's callback that runs before our next one replaces it.
                currentRequest.id = id
                return profile
            }
            .flatMap { profile in
                store.later {
                    // This request's id only if no other request's callback assigned one since ours
                    // did; and never the user, which the fix did not think of.
                    logger.info("greeting composed", metadata: ["name": "\(name)"])
                    return "\(profile.salutation), \(name). Your request id is \(currentRequest.id ?? "-")."
                }
            }
            .get()
    }
}
