#if Vapor
import Locals
import LocalsTestSupport
import LocalsLogging
import Logging
import Synchronization

/// What the tests' server knows about the request a task is handling.
struct RequestState: Sendable {
    var id = "-"
    var user: String?
}

/// The request-id Local of the tests.
let request = Local { RequestState() }

/// Another Local that gets a scope per request: a handler's plain writes to it reach its children.
let audit = Local { [String]() }

/// A Local that gets no scope: a handler's plain writes to it stay in the handler's task.
let unscoped = Local { "initial" }

let fields = [LocalField("request-id", of: request, at: \.id), LocalField("user", of: request, at: \.user)]

extension LogCapture {
    /// A capture whose loggers put this module's `fields` on every line.
    convenience init() {
        self.init(fields: fields)
    }
}

#endif
