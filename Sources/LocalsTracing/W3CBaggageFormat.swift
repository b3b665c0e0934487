#if Tracing
/// The W3C Baggage wire format: parsing a received header and writing an outgoing one.
///
/// Works on UTF-8 bytes throughout. Every byte a well-formed member may hold is printable ASCII, so
/// offsets into the header are also character boundaries, and slices become strings without a
/// second validation pass.
enum W3CBaggageFormat {
    /// One well-formed list-member, as offsets into the header it was parsed from.
    struct Member {
        /// The key, without surrounding whitespace.
        var key: Range<Int>
        /// The value, still percent-encoded, without surrounding whitespace.
        var value: Range<Int>
        /// The whole member, properties included, without surrounding whitespace.
        var whole: Range<Int>
    }

    // MARK: Character classes

    @inline(__always)
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    /// RFC 7230 `tchar`: the characters of a key.
    @inline(__always)
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"),
            UInt8(ascii: "0")...UInt8(ascii: "9"):
            true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"),
            UInt8(ascii: "'"), UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."),
            UInt8(ascii: "^"), UInt8(ascii: "_"), UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            true
        default:
            false
        }
    }

    /// `baggage-octet`: printable ASCII except DQUOTE, comma, semicolon and backslash.
    @inline(__always)
    static func isBaggageOctet(_ byte: UInt8) -> Bool {
        switch byte {
        case 0x21, 0x23...0x2B, 0x2D...0x3A, 0x3C...0x5B, 0x5D...0x7E: true
        default: false
        }
    }

    @inline(__always)
    static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }

    // MARK: Parsing

    /// The well-formed members of a header, in order, with empty and malformed members skipped.
    ///
    /// A comma always separates members (no part of a member may contain one), so a malformed member
    /// never takes its neighbours with it.
    static func members(in bytes: UnsafeBufferPointer<UInt8>) -> [Member] {
        var members: [Member] = []
        var start = 0
        while start <= bytes.count {
            var end = start
            while end < bytes.count && bytes[end] != UInt8(ascii: ",") {
                end += 1
            }
            if let member = member(in: bytes, start ..< end) {
                members.append(member)
            }
            start = end + 1
        }
        return members
    }

    /// Parses `key OWS "=" OWS value *( OWS ";" OWS property )` in `range`, or returns nil when the
    /// range is empty or not of that form, or when the value or a property value holds a `%` that
    /// does not start a two-digit hexadecimal escape.
    static func member(in bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Member? {
        var start = range.lowerBound
        var end = range.upperBound
        while start < end && isWhitespace(bytes[start]) { start += 1 }
        while end > start && isWhitespace(bytes[end - 1]) { end -= 1 }
        guard start < end else { return nil }

        var index = start
        func skipWhitespace() {
            while index < end && isWhitespace(bytes[index]) { index += 1 }
        }
        func scanToken() -> Range<Int> {
            let tokenStart = index
            while index < end && isTokenCharacter(bytes[index]) { index += 1 }
            return tokenStart ..< index
        }
        func scanValue() -> Range<Int>? {
            let valueStart = index
            while index < end && isBaggageOctet(bytes[index]) { index += 1 }
            let value = valueStart ..< index
            return hasValidPercentEncoding(bytes, value) ? value : nil
        }

        let key = scanToken()
        guard !key.isEmpty else { return nil }
        skipWhitespace()
        guard index < end, bytes[index] == UInt8(ascii: "=") else { return nil }
        index += 1
        skipWhitespace()
        guard let value = scanValue() else { return nil }
        skipWhitespace()
        while index < end {
            guard bytes[index] == UInt8(ascii: ";") else { return nil }
            index += 1
            skipWhitespace()
            guard !scanToken().isEmpty else { return nil }
            skipWhitespace()
            if index < end && bytes[index] == UInt8(ascii: "=") {
                index += 1
                skipWhitespace()
                guard scanValue() != nil else { return nil }
                skipWhitespace()
            }
        }
        return Member(key: key, value: value, whole: start ..< end)
    }

    static func hasValidPercentEncoding(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Bool {
        var index = range.lowerBound
        while index < range.upperBound {
            if bytes[index] == UInt8(ascii: "%") {
                guard index + 2 < range.upperBound,
                    hexValue(bytes[index + 1]) != nil,
                    hexValue(bytes[index + 2]) != nil
                else { return false }
                index += 3
            } else {
                index += 1
            }
        }
        return true
    }

    /// Resolves duplicate keys the way assigning to an ordered dictionary does: the last member
    /// with a key wins, in the place where that key first appeared.
    static func deduplicate(_ members: inout [Member], in bytes: UnsafeBufferPointer<UInt8>) {
        guard members.count > 1 else { return }
        func key(_ member: Member) -> UnsafeBufferPointer<UInt8> {
            UnsafeBufferPointer(rebasing: bytes[member.key])
        }
        if members.count <= 16 {
            // The usual header has no duplicate: find that out without allocating anything.
            var hasDuplicate = false
            for later in 1 ..< members.count where !hasDuplicate {
                hasDuplicate = members[..<later].contains { key($0).elementsEqual(key(members[later])) }
            }
            guard hasDuplicate else { return }
        }
        var kept: [Member] = []
        kept.reserveCapacity(members.count)
        if members.count <= 16 {
            // A handful of members: comparing each with the kept ones beats hashing.
            for member in members {
                if let earlier = kept.firstIndex(where: { key($0).elementsEqual(key(member)) }) {
                    kept[earlier] = member
                } else {
                    kept.append(member)
                }
            }
        } else {
            var position: [String: Int] = [:]
            for member in members {
                let name = String(decoding: key(member), as: UTF8.self)
                if let earlier = position[name] {
                    kept[earlier] = member
                } else {
                    position[name] = kept.count
                    kept.append(member)
                }
            }
        }
        members = kept
    }

    /// Whether a member of `size` bytes fits after `count` members taking `bytes` bytes (commas
    /// included) within the limits: at most ``LocalsBaggage/maximumMembers`` members and
    /// ``LocalsBaggage/maximumBytes`` bytes, members joined by single commas.
    @inline(__always)
    static func fits(size: Int, afterMembers count: Int, bytes: Int) -> Bool {
        count < LocalsBaggage.maximumMembers
            && bytes + (count > 0 ? 1 : 0) + size <= LocalsBaggage.maximumBytes
    }

    // MARK: Values

    /// The text a percent-encoded value stands for. Octets that are not UTF-8 become U+FFFD, as the
    /// specification requires; text holding a control character or a line or paragraph separator is
    /// rejected, since it could break or forge a log line.
    ///
    /// The value's escapes are known to be well-formed (``member(in:_:)`` checked them).
    static func decodedText(_ value: UnsafeBufferPointer<UInt8>) -> String? {
        guard value.contains(UInt8(ascii: "%")) else {
            // Baggage octets only: printable ASCII, nothing to check.
            return String(decoding: value, as: UTF8.self)
        }
        let text = String(unsafeUninitializedCapacity: value.count) { output in
            var read = 0
            var written = 0
            while read < value.count {
                if value[read] == UInt8(ascii: "%"), let high = hexValue(value[read + 1]),
                    let low = hexValue(value[read + 2])
                {
                    output[written] = high << 4 | low
                    read += 3
                } else {
                    output[written] = value[read]
                    read += 1
                }
                written += 1
            }
            return written
        }
        return text.unicodeScalars.contains(where: isLineBreaking) ? nil : text
    }

    /// C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
    @inline(__always)
    static func isLineBreaking(_ scalar: Unicode.Scalar) -> Bool {
        switch scalar.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x2028, 0x2029: true
        default: false
        }
    }

    /// How many bytes `text` takes once percent-encoded.
    static func encodedCount(_ text: UnsafeBufferPointer<UInt8>) -> Int {
        var count = 0
        for byte in text {
            count += needsEscape(byte) ? 3 : 1
        }
        return count
    }

    /// Bytes outside `baggage-octet`, and `%` itself, travel as `%XX`.
    @inline(__always)
    static func needsEscape(_ byte: UInt8) -> Bool {
        !isBaggageOctet(byte) || byte == UInt8(ascii: "%")
    }

    @inline(__always)
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? UInt8(ascii: "0") + nibble : UInt8(ascii: "A") + nibble - 10
    }
}

/// Builds an outgoing header in a fixed buffer of ``LocalsBaggage/maximumBytes`` bytes, one whole
/// member at a time: a member that would pass either limit is left out entirely.
@usableFromInline
struct BaggageHeaderWriter: ~Copyable {
    private let buffer: UnsafeMutableBufferPointer<UInt8>
    private(set) var count = 0
    private(set) var members = 0

    init(buffer: UnsafeMutableBufferPointer<UInt8>) {
        precondition(buffer.count >= LocalsBaggage.maximumBytes)
        self.buffer = buffer
    }

    /// Appends `key=value`, percent-encoding `text` as the value. Returns false, leaving the header
    /// as it was, when the member does not fit.
    mutating func appendMember(key: UnsafeBufferPointer<UInt8>, text: UnsafeBufferPointer<UInt8>) -> Bool {
        let size = key.count + 1 + W3CBaggageFormat.encodedCount(text)
        guard W3CBaggageFormat.fits(size: size, afterMembers: members, bytes: count) else { return false }
        appendSeparator()
        append(key)
        buffer[count] = UInt8(ascii: "=")
        count += 1
        for byte in text {
            if W3CBaggageFormat.needsEscape(byte) {
                buffer[count] = UInt8(ascii: "%")
                buffer[count + 1] = W3CBaggageFormat.hexDigit(byte >> 4)
                buffer[count + 2] = W3CBaggageFormat.hexDigit(byte & 0x0F)
                count += 3
            } else {
                buffer[count] = byte
                count += 1
            }
        }
        members += 1
        return true
    }

    /// Appends `key=value` from a field's key and its value's text, percent-encoding the text.
    /// Returns false, leaving the header as it was, when the member does not fit.
    mutating func appendMember(key: String, text: String) -> Bool {
        var key = key
        var text = text
        return key.withUTF8 { key in
            text.withUTF8 { text in appendMember(key: key, text: text) }
        }
    }

    /// Appends a member that is already in wire form. Returns false when it does not fit.
    mutating func appendRawMember(_ member: UnsafeBufferPointer<UInt8>) -> Bool {
        guard W3CBaggageFormat.fits(size: member.count, afterMembers: members, bytes: count) else { return false }
        appendSeparator()
        append(member)
        members += 1
        return true
    }

    private mutating func appendSeparator() {
        if members > 0 {
            buffer[count] = UInt8(ascii: ",")
            count += 1
        }
    }

    private mutating func append(_ bytes: UnsafeBufferPointer<UInt8>) {
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return }
        (buffer.baseAddress! + count).update(from: base, count: bytes.count)
        count += bytes.count
    }

    /// The header written so far.
    var header: String {
        String(decoding: UnsafeBufferPointer(rebasing: buffer[..<count]), as: UTF8.self)
    }
}
#endif
