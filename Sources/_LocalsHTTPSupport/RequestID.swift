/// A request's id: the one a client or proxy sent, when it is acceptable, or a new one.
///
/// An incoming id is untrusted: it ends up in log lines, in response headers and in the headers
/// of calls to other services. So it is used only when it is 1 to ``maximumLength`` bytes of
/// visible ASCII (`!` through `~`: no space, no control character, nothing beyond ASCII);
/// anything else is dropped, and the request gets a new id, with ``problem`` saying why so that
/// the caller can log it. Nothing here traps, whatever the input.
package struct RequestID: Sendable, Equatable {
    /// The longest incoming id used as it is, in bytes.
    package static let maximumLength = 128

    /// Why an incoming id was not used.
    package enum Problem: Sendable, Equatable, CustomStringConvertible {
        /// The header was there but empty.
        case empty
        /// The id is longer than ``RequestID/maximumLength`` bytes.
        case tooLong(bytes: Int)
        /// The byte at `offset` is a control character, a space or not ASCII.
        case invalidByte(UInt8, offset: Int)

        /// A short reason with no spaces, fit for a `key=value` log line: `empty`,
        /// `too-long:129`, `invalid-byte:0x0a@3`.
        package var description: String {
            switch self {
            case .empty:
                "empty"
            case .tooLong(let bytes):
                "too-long:\(bytes)"
            case .invalidByte(let byte, let offset):
                "invalid-byte:0x\(byte < 16 ? "0" : "")\(String(byte, radix: 16))@\(offset)"
            }
        }
    }

    /// The id to use.
    package let value: String
    /// Why the request's id was replaced by a generated one; nil if it was used or there was none.
    package let problem: Problem?

    /// The id for a request whose id header holds `incoming` (nil when it has none).
    package init(incoming: String?) {
        guard let incoming else {
            self.init(value: Self.generate(), problem: nil)
            return
        }
        if let problem = Self.problem(with: incoming) {
            self.init(value: Self.generate(), problem: problem)
        } else {
            self.init(value: incoming, problem: nil)
        }
    }

    private init(value: String, problem: Problem?) {
        self.value = value
        self.problem = problem
    }

    /// Why `id` may not be used as it is, or nil if it may.
    package static func problem(with id: String) -> Problem? {
        let utf8 = id.utf8
        guard !utf8.isEmpty else { return .empty }
        guard utf8.count <= maximumLength else { return .tooLong(bytes: utf8.count) }
        for (offset, byte) in utf8.enumerated() where !(0x21...0x7E).contains(byte) {
            return .invalidByte(byte, offset: offset)
        }
        return nil
    }

    /// A new id: a random (version 4) UUID in lowercase, such as
    /// `1b4e28ba-2fa1-4d2e-883f-0016d3cca427`.
    package static func generate() -> String {
        var generator = SystemRandomNumberGenerator()
        var bytes = (0..<16).map { _ in UInt8.random(in: .min ... .max, using: &generator) }
        bytes[6] = (bytes[6] & 0x0F) | 0x40  // version 4
        bytes[8] = (bytes[8] & 0x3F) | 0x80  // RFC 4122 variant
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        text.reserveCapacity(36)
        for (index, byte) in bytes.enumerated() {
            if [4, 6, 8, 10].contains(index) {
                text.append(UInt8(ascii: "-"))
            }
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
