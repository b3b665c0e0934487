// The programs the model check runs: the value every Local stores, and the steps a program is
// made of, each taken by one task in one global order. Printed as pseudo-Swift for failures.

import Locals

// MARK: - The stored value

/// The value every Local of a model program stores. `list` starts with 2 elements; programs also
/// write shorter ones (and longer), so that `list[1]` is sometimes missing.
struct ModelValue: Sendable, Equatable, CustomStringConvertible {
    var a = "i"
    var b = "i"
    var n = 0
    var list = ["i", "i"]

    var description: String { "{a: \(a), b: \(b), n: \(n), list: \(list)}" }
}

/// The parts of a `ModelValue` a program reads and writes.
enum ModelField: String, CaseIterable, Sendable {
    case a, b, n, list
    /// `list[1]`: one element, written through property syntax (`local.list[1] = x`, which reads
    /// and writes all of `list`) or through its own key path (`local[dynamicMember: \.list[1]]`).
    /// Where the list has fewer than 2 elements there is no `list[1]`: a read or write of it
    /// observes `.missingElement` and changes nothing (see `ModelState.write`).
    case element = "list[1]"
    /// The whole value (`local.value`, `\.self`).
    case whole = "value"
}

/// A value read or written: one field, the whole value, or a cancellation flag; or what a read
/// or write of `list[1]` observes where the list is too short to have it.
enum ModelPart: Sendable, Equatable, CustomStringConvertible {
    case string(String)
    case int(Int)
    case list([String])
    case whole(ModelValue)
    case bool(Bool)
    case missingElement(listCount: Int)

    var description: String {
        switch self {
        case .string(let s): "\"\(s)\""
        case .int(let n): "\(n)"
        case .list(let l): "\(l)"
        case .whole(let v): "\(v)"
        case .bool(let b): "\(b)"
        case .missingElement(let count): "<no list[1]: the list has \(count) element\(count == 1 ? "" : "s")>"
        }
    }

    var string: String {
        guard case .string(let s) = self else { preconditionFailure("not a string: \(self)") }
        return s
    }

    var int: Int {
        guard case .int(let n) = self else { preconditionFailure("not an int: \(self)") }
        return n
    }

    var list: [String] {
        guard case .list(let l) = self else { preconditionFailure("not a list: \(self)") }
        return l
    }

    var whole: ModelValue {
        guard case .whole(let v) = self else { preconditionFailure("not a whole value: \(self)") }
        return v
    }
}

extension ModelValue {
    subscript(field: ModelField) -> ModelPart {
        get {
            switch field {
            case .a: .string(a)
            case .b: .string(b)
            case .n: .int(n)
            case .list: .list(list)
            case .element: list.count >= 2 ? .string(list[1]) : .missingElement(listCount: list.count)
            case .whole: .whole(self)
            }
        }
        set {
            switch field {
            case .a: a = newValue.string
            case .b: b = newValue.string
            case .n: n = newValue.int
            case .list: list = newValue.list
            case .element: if list.count >= 2 { list[1] = newValue.string }  // else there is none to set
            case .whole: self = newValue.whole
            }
        }
    }
}

// MARK: - Programs

/// How a step writes a field.
enum ModelWriteStyle: String, Sendable, CaseIterable {
    /// `local.a = x`; for `list[1]`, `local.list[1] = x` (reads and writes all of `list`); for the
    /// whole value, `local.value = v`.
    case property
    /// Through a key path held in a variable, in a generic function: `local[dynamicMember: kp] = x`.
    case keyPath
    /// `local.update { $0.a = x }`.
    case update
}

/// How a child is created: a task by every path, or a plain thread (which runs outside any
/// task: a `.task` Local keys it by thread, and its scopes reach the tasks it creates).
enum ModelSpawn: Sendable, Equatable, CustomStringConvertible {
    case child(ChildKind)
    case detached
    case thread

    var isStructured: Bool {
        switch self {
        case .detached, .thread, .child(.unstructuredTask): false
        #if compiler(>=6.2)
        case .child(.immediateTask): false
        #endif
        case .child: true
        }
    }

    var description: String {
        switch self {
        case .child(let kind): kind.rawValue
        case .detached: "Task.detached"
        case .thread: "Thread"
        }
    }

    static let all: [ModelSpawn] = ChildKind.allCases.map(ModelSpawn.child) + [.detached, .thread]
}

struct ModelChange: Sendable, Equatable {
    var field: ModelField
    var part: ModelPart
}

/// How a scope is opened.
enum ModelScopeStyle: Sendable, Equatable {
    case withValue(ModelChange)
    case withValues([ModelChange])
    case withScope
}

struct ModelScope: Sendable, Equatable, CustomStringConvertible {
    var local: Int
    var style: ModelScopeStyle
    /// The scope's `inheritance:` argument; nil for the Local's own policy.
    var inheritance: Inheritance?

    /// Makes the scope's changes (where the list is too short to have `list[1]`, a change of it
    /// changes nothing: the runner then opens the scope with no change).
    func apply(to value: inout ModelValue) {
        switch style {
        case .withValue(let change): value[change.field] = change.part
        case .withValues(let changes): for change in changes { value[change.field] = change.part }
        case .withScope: break
        }
    }

    var description: String {
        let policy = inheritance.map { ", inheritance: .\($0)" } ?? ""
        switch style {
        case .withValue(let change):
            return "L\(local).withValue(\\.\(change.field.rawValue), \(change.part)\(policy))"
        case .withValues(let changes):
            let body = changes.map { "$0.\($0.field.rawValue) = \($0.part)" }.joined(separator: "; ")
            return "L\(local).withValues({ \(body) }\(policy))"
        case .withScope:
            return "L\(local).withScope(\(policy.isEmpty ? "" : String(policy.dropFirst(2))))"
        }
    }
}

/// What a synchronous scope's body does (it runs within one step).
indirect enum ModelSyncOp: Sendable, Equatable {
    case read(local: Int, field: ModelField)
    case write(local: Int, field: ModelField, part: ModelPart, style: ModelWriteStyle)
    case reset(local: Int)
    case scope(ModelScope, [ModelSyncOp])
    /// Throws an error that unwinds this many enclosing synchronous scopes.
    case throwOut(levels: Int)
}

/// Keys of a `.task` Local's key types that it has no storage for. (A key of another type
/// stops the program: see MisuseTests.)
enum ModelUnknownKey: String, Sendable, CaseIterable {
    case thisThread, endedTask
}

enum ModelAction: Sendable, Equatable {
    case read(local: Int, field: ModelField)
    case write(local: Int, field: ModelField, part: ModelPart, style: ModelWriteStyle)
    case reset(local: Int)
    /// `discard(key:)` with the running task's own key (a `TaskID`, or the discriminator's key).
    case discardSelf(local: Int, viaDiscriminatorKey: Bool)
    /// `discard(key:)` with another task's `TaskID` (running or ended).
    case discardTask(local: Int, target: Int)
    case discardUnknown(local: Int, key: ModelUnknownKey)
    /// Opens an asynchronous scope; the task's later steps run inside it until `close`/`throwOut`.
    case open(ModelScope)
    case close
    /// Throws an error that unwinds this many of the task's open asynchronous scopes.
    case throwOut(levels: Int)
    /// A synchronous scope with its whole body, as one step.
    case sync(ModelScope, [ModelSyncOp])
    case spawn(child: Int, kind: ModelSpawn)
    /// Waits for a child to finish (`await task.value`, or its completion for a structured child).
    case awaitChild(Int)
    /// Cancels an unstructured child.
    case cancel(Int)
    /// Reads `Task.isCancelled`; if cancelled, throws out of this many open scopes.
    case checkCancellation(levels: Int)
    /// `LocalsSnapshot.capture()`, kept in a numbered slot that every task of the program can run.
    case capture(slot: Int)
    /// Runs the snapshot in a slot (an empty `LocalsSnapshot()` if none was taken there) around a
    /// short body of reads, writes and synchronous scopes, all within this step; `async` for
    /// `await snapshot.run { ... }` (tasks only).
    case run(slot: Int, async: Bool, [ModelSyncOp])
    /// The task's last step (its open scopes are closed and its structured children done).
    case end
}

extension ModelAction {
    /// A read, write or reset step as the op a body would make of it, so that the model and the
    /// runner take steps and bodies through one interpreter; nil for every other step.
    var op: ModelSyncOp? {
        switch self {
        case .read(let local, let field): .read(local: local, field: field)
        case .write(let local, let field, let part, let style):
            .write(local: local, field: field, part: part, style: style)
        case .reset(let local): .reset(local: local)
        default: nil
        }
    }
}

struct ModelStep: Sendable, Equatable {
    var task: Int
    var action: ModelAction
}

struct ModelProgram: Sendable, Equatable {
    /// The policy of each Local (one or two).
    var policies: [Inheritance]
    var steps: [ModelStep]
}

// MARK: - Printing

extension ModelProgram {
    /// The program as pseudo-Swift in its global order, one line per step, indented by each
    /// task's open scopes; `notes` (by step) are appended, e.g. expected and actual reads.
    func listing(notes: [Int: String] = [:]) -> String {
        let locals = policies.enumerated().map { "L\($0.offset) = Local(inheritance: .\($0.element))" }
        var lines = ["Locals: " + locals.joined(separator: ", ")]
        var depth: [Int: Int] = [:]
        for (index, step) in steps.enumerated() {
            var d = depth[step.task, default: 0]
            if case .close = step.action { d -= 1 }
            if case .throwOut(let levels) = step.action { d -= levels }
            let indent = String(repeating: "  ", count: max(d, 0))
            let note = notes[index].map { "   // \($0)" } ?? ""
            lines.append("\(String(index).leftPadded(3)) t\(step.task): \(indent)\(step.action.text)\(note)")
            if case .open = step.action { d += 1 }
            depth[step.task] = d
        }
        return lines.joined(separator: "\n")
    }
}

extension String {
    func leftPadded(_ width: Int) -> String {
        count >= width ? self : String(repeating: " ", count: width - count) + self
    }
}

extension ModelAction {
    var text: String {
        switch self {
        case .read(let l, let f): return "read L\(l).\(f.rawValue)"
        case .write(let l, let f, let p, let s): return ModelSyncOp.writeText(l, f, p, s)
        case .reset(let l): return "L\(l).reset()"
        case .discardSelf(let l, let viaKey):
            let key = viaKey ? "TaskDiscriminator().currentKey!" : "TaskID.current! (ThreadID.current on a thread)"
            return "L\(l).discard(key: \(key))"
        case .discardTask(let l, let t): return "L\(l).discard(key: <TaskID or ThreadID of t\(t)>)"
        case .discardUnknown(let l, let k): return "L\(l).discard(key: <\(k.rawValue)>)"
        case .open(let scope): return "try await \(scope.description) {"
        case .close: return "}"
        case .throwOut(let levels): return "throw (unwinds \(levels) scope\(levels == 1 ? "" : "s"))  }"
        case .sync(let scope, let ops):
            return "try \(scope.description) { \(ops.map(\.text).joined(separator: "; ")) }"
        case .spawn(let child, let kind): return "spawn t\(child) = \(kind)"
        case .awaitChild(let child): return "await t\(child)"
        case .cancel(let child): return "t\(child).cancel()"
        case .checkCancellation(let levels):
            return "read Task.isCancelled; if cancelled, throw (unwinds \(levels) scope\(levels == 1 ? "" : "s"))"
        case .capture(let slot): return "s\(slot) = LocalsSnapshot.capture()"
        case .run(let slot, let async, let ops):
            let body = ops.isEmpty ? "{}" : "{ \(ops.map(\.text).joined(separator: "; ")) }"
            return "\(async ? "await " : "")s\(slot).run \(body)"
        case .end: return "end of task"
        }
    }
}

extension ModelSyncOp {
    static func writeText(_ l: Int, _ f: ModelField, _ p: ModelPart, _ s: ModelWriteStyle) -> String {
        switch s {
        case .property: "L\(l).\(f.rawValue) = \(p)"
        case .keyPath: "L\(l)[dynamicMember: \\.\(f == .whole ? "self" : f.rawValue)] = \(p)"
        case .update: "L\(l).update { $0.\(f == .whole ? "self" : f.rawValue) = \(p) }"
        }
    }

    var text: String {
        switch self {
        case .read(let l, let f): "read L\(l).\(f.rawValue)"
        case .write(let l, let f, let p, let s): Self.writeText(l, f, p, s)
        case .reset(let l): "L\(l).reset()"
        case .scope(let scope, let ops): "try \(scope.description) { \(ops.map(\.text).joined(separator: "; ")) }"
        case .throwOut(let levels): "throw (unwinds \(levels))"
        }
    }
}
