/// Whether `text` has the shape of an id the integrations generate: a version 4 UUID in lowercase.
public func isGeneratedID(_ text: String) -> Bool {
    let utf8 = Array(text.utf8)
    guard utf8.count == 36 else { return false }
    for (index, byte) in utf8.enumerated() {
        if [8, 13, 18, 23].contains(index) {
            guard byte == UInt8(ascii: "-") else { return false }
        } else {
            let digit = (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte)
            guard digit || (UInt8(ascii: "a")...UInt8(ascii: "f")).contains(byte) else { return false }
        }
    }
    return utf8[14] == UInt8(ascii: "4")
}
