// What a snapshot's run sees, by what the capturing context held: the table in the Callbacks,
// Event Loops and Queues article. One small program per row, whose reads the model must give as
// the article says, and which the library must run as the model says: the one place these
// promises are asserted (SnapshotTests has what the table does not cover).

import Locals
import Testing

@Suite("Model check: the model of snapshots gives the article's table of what run sees")
struct ModelCheckSnapshotTableTests {
    struct Row: CustomTestStringConvertible, Sendable {
        var name: String
        var policy: Inheritance
        var steps: [ModelStep]
        /// What the steps at these indices must read.
        var expected: [Int: [String]]

        var testDescription: String { name }
    }

    static func step(_ task: Int, _ action: ModelAction) -> ModelStep { ModelStep(task: task, action: action) }
    static func read(_ field: ModelField) -> ModelSyncOp { .read(local: 0, field: field) }
    static func write(_ field: ModelField, _ text: String) -> ModelSyncOp {
        .write(local: 0, field: field, part: .string(text), style: .property)
    }
    static func write(_ task: Int, _ field: ModelField, _ text: String) -> ModelStep {
        step(task, .write(local: 0, field: field, part: .string(text), style: .property))
    }
    static let openScope = ModelAction.open(ModelScope(
        local: 0, style: .withValue(ModelChange(field: .a, part: .string("scope"))), inheritance: nil))

    /// The scope's owner captures, then writes `a` and `b`, and a thread runs the snapshot. The
    /// thread reads its own `a` before the run (step 5); the run reads `a`, writes it (in `style`),
    /// reads it again and reads `b` (step 6); then the thread reads its own `a` (step 7), the owner
    /// its scope's (step 10) and, once the scope has closed, its own again (step 12).
    static func ownerCaptures(
        _ policy: Inheritance, run: [String], ownerAfter: String, style: ModelWriteStyle = .property
    ) -> Row {
        Row(
            name: "a scope it is in, .\(policy)", policy: policy,
            steps: [
                step(0, openScope),
                step(0, .capture(slot: 0)),
                write(0, .a, "owner later"),
                write(0, .b, "owner later"),
                step(0, .spawn(child: 1, kind: .thread)),
                step(1, .read(local: 0, field: .a)),
                step(1, .run(slot: 0, async: false, [
                    read(.a),
                    .write(local: 0, field: .a, part: .string("run wrote"), style: style),
                    read(.a),
                    read(.b),
                ])),
                step(1, .read(local: 0, field: .a)),
                step(1, .end),
                step(0, .awaitChild(1)),
                step(0, .read(local: 0, field: .a)),
                step(0, .close),
                step(0, .read(local: 0, field: .a)),
                step(0, .end),
            ],
            expected: [5: ["i"], 6: run, 7: ["i"], 10: [ownerAfter], 12: ["i"]]
        )
    }

    /// Made anew for each use, not kept in a static: Swift keeps an enum's case in spare bits of
    /// the payload's pointer, which Address Sanitizer's leak check does not recognize, so steps
    /// still held at exit would be reported as leaked.
    static var rows: [Row] {
        [
            // `.copy`: a copy of the scope's value, taken when run starts; its writes stay its own.
            ownerCaptures(.copy, run: ["owner later", "run wrote", "owner later"], ownerAfter: "owner later"),
            // `.shared`: the scope's value itself, written in place (here through `update`).
            ownerCaptures(.shared, run: ["owner later", "run wrote", "owner later"], ownerAfter: "run wrote",
                          style: .update),
            // `.overlay`: reads through to the live value, also after a write of its own to
            // another part; its writes stay in its own layer.
            ownerCaptures(.overlay, run: ["owner later", "run wrote", "owner later"], ownerAfter: "owner later"),
            // `.fresh`: the initial value.
            ownerCaptures(.fresh, run: ["i", "run wrote", "i"], ownerAfter: "owner later"),
            Row(
                name: "an .overlay child's view", policy: .overlay,
                steps: [
                    step(0, openScope),
                    step(0, .spawn(child: 1, kind: .child(.unstructuredTask))),
                    write(1, .b, "child wrote"),
                    step(1, .capture(slot: 0)),
                    step(1, .end),
                    step(0, .awaitChild(1)),
                    write(0, .a, "owner later"),
                    step(0, .spawn(child: 2, kind: .thread)),
                    step(2, .run(slot: 0, async: false, [read(.a), read(.b)])),
                    step(2, .end),
                    step(0, .awaitChild(2)),
                    step(0, .close),
                    step(0, .end),
                ],
                expected: [8: ["owner later", "child wrote"]]
            ),
            Row(
                name: "its own value (no scope)", policy: .copy,
                steps: [
                    write(0, .a, "own"),
                    step(0, .capture(slot: 0)),
                    write(0, .a, "changed after"),
                    step(0, .spawn(child: 1, kind: .thread)),
                    step(1, .run(slot: 0, async: false, [read(.a), write(.a, "run wrote")])),
                    step(1, .end),
                    step(0, .awaitChild(1)),
                    step(0, .read(local: 0, field: .a)),
                    step(0, .end),
                ],
                expected: [4: ["own"], 7: ["changed after"]]
            ),
            Row(
                name: "a .copy child's own value", policy: .copy,
                steps: [
                    step(0, openScope),
                    step(0, .spawn(child: 1, kind: .child(.unstructuredTask))),
                    write(1, .a, "child own"),
                    step(1, .capture(slot: 0)),
                    step(1, .end),
                    step(0, .awaitChild(1)),
                    write(0, .a, "owner later"),
                    step(0, .spawn(child: 2, kind: .thread)),
                    step(2, .run(slot: 0, async: false, [read(.a)])),
                    step(2, .end),
                    step(0, .awaitChild(2)),
                    step(0, .close),
                    step(0, .end),
                ],
                expected: [8: ["child own"]]
            ),
            Row(
                name: "nothing (the Local was never touched, no scope): a synchronous run reads the initial value",
                policy: .copy,
                steps: [
                    step(0, .capture(slot: 0)),
                    step(0, .spawn(child: 1, kind: .thread)),
                    write(1, .a, "mine"),
                    step(1, .run(slot: 0, async: false, [read(.a), write(.a, "in run"), read(.a)])),
                    step(1, .run(slot: 0, async: false, [read(.a)])),
                    step(1, .read(local: 0, field: .a)),
                    step(1, .end),
                    step(0, .awaitChild(1)),
                    step(0, .end),
                ],
                // What a run wrote is gone: the next run starts from the initial value again.
                expected: [3: ["i", "in run"], 4: ["i"], 5: ["mine"]]
            ),
            Row(
                name: "nothing (the Local was never touched, no scope): an asynchronous run keeps the running task's",
                policy: .copy,
                steps: [
                    step(0, .capture(slot: 0)),
                    step(0, .spawn(child: 1, kind: .detached)),
                    write(1, .a, "mine"),
                    step(1, .run(slot: 0, async: true, [read(.a)])),
                    step(1, .read(local: 0, field: .a)),
                    step(1, .end),
                    step(0, .awaitChild(1)),
                    step(0, .end),
                ],
                expected: [3: ["mine"], 4: ["mine"]]
            ),
        ]
    }

    @Test("each row of the table, in the model and in the library", arguments: rows)
    func row(_ row: Row) async throws {
        let program = ModelProgram(policies: [row.policy], steps: row.steps)
        let observed = try ModelState.simulate(program).get()
        for (index, reads) in row.expected {
            #expect(observed[index] == reads.map(ModelPart.string), "step \(index)\n\(program.listing())")
        }
        let outcome = await ModelCheck.execute(program, unknown: await ModelContext.UnknownKeys.make())
        #expect(!outcome.failed, "\(outcome.summary)\(program.listing(notes: outcome.notes))")
    }
}
