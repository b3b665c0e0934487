import Testing
import _LocalsHTTPSupport

@Suite("RequestID: an incoming id is used only when it is 1 to 128 bytes of visible ASCII")
struct RequestIDTests {
    @Test(
        "uses an acceptable id as it is",
        arguments: ["a", "!", "~", "A-z_0.9:x", "a=b", "quote\"", String(repeating: "7", count: 128)]
    )
    func usesAcceptableIDs(_ incoming: String) {
        let id = RequestID(incoming: incoming)
        #expect(id.value == incoming)
        #expect(id.problem == nil)
    }

    @Test(
        "replaces a malformed id, and says why",
        arguments: [
            ("", RequestID.Problem.empty),
            (String(repeating: "x", count: 129), .tooLong(bytes: 129)),
            ("two words", .invalidByte(0x20, offset: 3)),
            ("tab\tid", .invalidByte(0x09, offset: 3)),
            ("del\u{7F}", .invalidByte(0x7F, offset: 3)),
            ("line\r\nbreak", .invalidByte(0x0D, offset: 4)),
            ("caf\u{E9}", .invalidByte(0xC3, offset: 3)),
        ]
    )
    func replacesMalformedIDs(_ incoming: String, _ problem: RequestID.Problem) {
        let id = RequestID(incoming: incoming)
        #expect(id.problem == problem)
        #expect(id.value != incoming)
        #expect(RequestID.problem(with: id.value) == nil)
    }

    @Test("a reason has no space, so that it fits a key=value log line")
    func reasonsHaveNoSpaces() {
        let reasons = [RequestID.Problem.empty, .tooLong(bytes: 129), .invalidByte(0x0A, offset: 3)].map(\.description)
        #expect(reasons == ["empty", "too-long:129", "invalid-byte:0x0a@3"])
    }

    @Test("generates distinct lowercase version 4 UUIDs when the request has no id")
    func generatesUUIDs() {
        let ids = (0..<1_000).map { _ in RequestID(incoming: nil) }
        #expect(ids.allSatisfy { $0.problem == nil })
        #expect(Set(ids.map(\.value)).count == 1_000)
        for id in ids.prefix(50) {
            let text = Array(id.value.utf8)
            #expect(text.count == 36)
            #expect([8, 13, 18, 23].allSatisfy { text[$0] == UInt8(ascii: "-") })
            #expect(text[14] == UInt8(ascii: "4"))
            #expect([UInt8(ascii: "8"), UInt8(ascii: "9"), UInt8(ascii: "a"), UInt8(ascii: "b")].contains(text[19]))
            #expect(id.value == id.value.lowercased())
        }
    }
}
