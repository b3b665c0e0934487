// The few things the compare tool asks of the system: a monotonic clock, resident memory, the
// machine's description, and formatting numbers (without Foundation, to keep the process small).

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#elseif canImport(Musl)
import Musl
#endif

enum System {
    /// Nanoseconds on the monotonic clock.
    @inline(__always)
    static func now() -> UInt64 {
        var time = timespec()
        clock_gettime(CLOCK_MONOTONIC, &time)
        return UInt64(time.tv_sec) &* 1_000_000_000 &+ UInt64(time.tv_nsec)
    }

    /// The process's resident memory in bytes (`VmRSS` in /proc/self/status), or nil where there
    /// is no /proc.
    static func residentBytes() -> Int? {
        guard let status = readFile("/proc/self/status") else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("VmRSS:") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 2, let kilobytes = Int(fields[1]) else { return nil }
            return kilobytes * 1024
        }
        return nil
    }

    static func readFile(_ path: String) -> String? {
        guard let file = fopen(path, "r") else { return nil }
        defer { fclose(file) }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, file)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// What `command` prints (stdout and stderr), trimmed, or nil if it could not run.
    static func run(_ command: String) -> String? {
        guard let pipe = popen(command + " 2>&1", "r") else { return nil }
        var bytes: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            let count = fread(&buffer, 1, buffer.count, pipe)
            if count <= 0 { break }
            bytes += buffer[0..<count]
        }
        guard pclose(pipe) == 0 else { return nil }
        let text = String(decoding: bytes, as: UTF8.self)
        return String(text.drop(while: \.isWhitespace).reversed().drop(while: \.isWhitespace).reversed())
    }

    /// This executable's path.
    static var executablePath: String? {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    static var onlineCores: Int { sysconf(Int32(_SC_NPROCESSORS_ONLN)) }

    /// The 1-minute load average, or nil where there is no /proc.
    static var loadAverage: Double? {
        readFile("/proc/loadavg")?.split(separator: " ").first.flatMap { Double($0) }
    }

    static var cpuModel: String {
        let cpuinfo = readFile("/proc/cpuinfo") ?? ""
        for line in cpuinfo.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return String(line[line.index(after: colon)...].drop(while: \.isWhitespace))
            }
        }
        return "unknown CPU"
    }

    /// The swift-locals checkout this tool was built from: Benchmarks/Sources/locals-compare/ is
    /// three folders below it.
    static var libraryRoot: String {
        var parts = #filePath.split(separator: "/", omittingEmptySubsequences: false)
        parts.removeLast(4)
        return parts.joined(separator: "/")
    }
}

// MARK: Formatting

/// `value` with `digits` digits after the point.
func fixed(_ value: Double, _ digits: Int) -> String {
    guard value.isFinite else { return "-" }
    var scale = 1.0
    for _ in 0..<digits { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    let whole = scaled / Int(scale)
    guard digits > 0 else { return sign + grouped(whole) }
    var fraction = String(scaled % Int(scale))
    while fraction.count < digits { fraction = "0" + fraction }
    return "\(sign)\(grouped(whole)).\(fraction)"
}

/// `value` with thousands separated by commas.
func grouped(_ value: Int) -> String {
    let digits = String(value.magnitude)
    var result = ""
    for (index, digit) in digits.enumerated() {
        if index > 0 && (digits.count - index) % 3 == 0 { result += "," }
        result.append(digit)
    }
    return value < 0 ? "-" + result : result
}

func mebibytes(_ bytes: Int) -> String {
    (bytes >= 0 ? "+" : "") + fixed(Double(bytes) / 1_048_576, 1) + " MiB"
}

/// Columns padded to their widest cell; numbers (cells starting with a digit, sign or '~') are
/// right-aligned.
func printTable(_ header: [String], _ rows: [[String]], indent: String = "  ") {
    let all = [header] + rows
    var widths = [Int](repeating: 0, count: header.count)
    for row in all {
        for (column, cell) in row.enumerated() {
            widths[column] = max(widths[column], cell.count)
        }
    }
    func line(_ row: [String]) -> String {
        var text = indent
        for (column, cell) in row.enumerated() {
            let padding = String(repeating: " ", count: widths[column] - cell.count)
            let numeric = cell.first.map { $0.isNumber || "+-~≤≥".contains($0) } ?? false
            text += numeric && column > 0 ? padding + cell : cell + padding
            if column < row.count - 1 { text += "  " }
        }
        return String(text.reversed().drop(while: { $0 == " " }).reversed())
    }
    print(line(header))
    print(indent + String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1)))
    for row in rows {
        print(line(row))
    }
}
