import Hummingbird
import Logging
import NIOCore
import ServiceLifecycle
import Synchronization


/// An OTLP/HTTP receiver on a free loopback port, in this process: it keeps the body of every
/// `POST /v1/traces`, `/v1/metrics` and `/v1/logs` and answers each with an empty success
/// (`200`, `application/json`, `{}`: an empty export response, which swift-otel's exporter reads
/// in either encoding), as a collector that accepted everything does.
final class OTLPCollector: Sendable {
    /// One export as it arrived.
    struct Export: Sendable {
        let path: String
        let contentType: String?
        let body: ByteBuffer
    }

    struct DidNotStart: Error {}

    private let received = Mutex<[Export]>([])

    /// Every export received so far, in order of arrival.
    var exports: [Export] {
        received.withLock { $0 }
    }

    /// Runs the receiver, then `body` with its base URL (`http://127.0.0.1:<port>`), then stops it.
    /// Every export that was answered before `body` returned is in ``exports`` when this returns.
    func run<R: Sendable>(_ body: (_ url: String) async throws -> R) async throws -> R {
        let router = Router()
        router.post("v1/:signal") { request, _ -> Response in
            let bytes = try await request.body.collect(upTo: 64 << 20)
            let export = Export(path: request.uri.path, contentType: request.headers[.contentType], body: bytes)
            self.received.withLock { $0.append(export) }
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: ResponseBody(byteBuffer: ByteBuffer(string: "{}"))
            )
        }
        let (ports, portSink) = AsyncStream.makeStream(of: Int.self)
        let quiet = Logger(label: "otlp-collector") { _ in SwiftLogNoOpLogHandler() }
        let app = Application(
            router: router,
            configuration: ApplicationConfiguration(address: .hostname("127.0.0.1", port: 0)),
            onServerRunning: { channel in
                portSink.yield(channel.localAddress?.port ?? 0)
                portSink.finish()
            },
            logger: quiet
        )
        let group = ServiceGroup(
            configuration: ServiceGroupConfiguration(services: [app], gracefulShutdownSignals: [], logger: quiet)
        )
        return try await withThrowingTaskGroup(of: Void.self) { tasks in
            tasks.addTask {
                defer { portSink.finish() }
                try await group.run()
            }
            var portIterator = ports.makeAsyncIterator()
            let result: Result<R, any Error>
            if let port = await portIterator.next(), port > 0 {
                do {
                    result = .success(try await body("http://127.0.0.1:\(port)"))
                } catch {
                    result = .failure(error)
                }
            } else {
                result = .failure(DidNotStart())
            }
            await group.triggerGracefulShutdown()
            try await tasks.waitForAll()
            return try result.get()
        }
    }
}

/// The spans of an OTLP `ExportTraceServiceRequest` in the protobuf encoding, the one the
/// OTLP/HTTP exporter sends by default (`application/x-protobuf`), read with ``ProtobufReader``:
/// the fields the tests look at, by their numbers in opentelemetry-proto's `trace/v1/trace.proto`,
/// `common/v1/common.proto` and `resource/v1/resource.proto`. Other fields are skipped.
struct OTLPTraces {
    /// A span: ids as lowercase hex, the form `traceparent` uses.
    struct Span {
        var traceID = ""
        var spanID = ""
        /// Empty for a root span.
        var parentSpanID = ""
        var name = ""
        /// `SpanKind`: 2 server, 3 client.
        var kind = 0
        /// The attributes with a string value, by key.
        var strings: [String: String] = [:]
    }

    /// The spans of one `ResourceSpans`, with the string attributes of its resource.
    struct ResourceSpans {
        var resource: [String: String] = [:]
        var spans: [Span] = []
    }

    static let serverKind = 2
    static let clientKind = 3

    var resourceSpans: [ResourceSpans] = []

    struct Malformed: Error, CustomStringConvertible {
        let description: String
    }

    /// Reads one export body.
    init(protobuf body: ByteBuffer) throws {
        var request = ProtobufReader(Array(body.readableBytesView)[...])
        while let (number, value) = try request.next() {
            if number == 1 { resourceSpans.append(try Self.resourceSpans(value.message())) }  // resource_spans
        }
    }

    private static func resourceSpans(_ bytes: ArraySlice<UInt8>) throws -> ResourceSpans {
        var result = ResourceSpans()
        var reader = ProtobufReader(bytes)
        while let (number, value) = try reader.next() {
            switch number {
            case 1:  // resource
                var resource = ProtobufReader(try value.message())
                while let (number, value) = try resource.next() {
                    if number == 1 { try addString(value.message(), to: &result.resource) }  // attributes
                }
            case 2:  // scope_spans
                var scope = ProtobufReader(try value.message())
                while let (number, value) = try scope.next() {
                    if number == 2 { result.spans.append(try span(value.message())) }  // spans
                }
            default:
                break
            }
        }
        return result
    }

    private static func span(_ bytes: ArraySlice<UInt8>) throws -> Span {
        var span = Span()
        var reader = ProtobufReader(bytes)
        while let (number, value) = try reader.next() {
            switch number {
            case 1: span.traceID = hex(try value.message())  // trace_id
            case 2: span.spanID = hex(try value.message())  // span_id
            case 4: span.parentSpanID = hex(try value.message())  // parent_span_id
            case 5: span.name = try value.string()  // name
            case 6: span.kind = Int(try value.varint())  // kind
            case 9: try addString(value.message(), to: &span.strings)  // attributes
            default: break
            }
        }
        return span
    }

    /// Adds a `KeyValue` whose `AnyValue` holds a string (`key`: 1, `value`: 2, `string_value`: 1).
    private static func addString(_ bytes: ArraySlice<UInt8>, to strings: inout [String: String]) throws {
        var key: String?
        var text: String?
        var reader = ProtobufReader(bytes)
        while let (number, value) = try reader.next() {
            if number == 1 { key = try value.string() }
            if number == 2 {
                var anyValue = ProtobufReader(try value.message())
                while let (number, value) = try anyValue.next() {
                    if number == 1 { text = try value.string() }  // string_value
                }
            }
        }
        if let key, let text { strings[key] = text }
    }

    private static func hex(_ bytes: ArraySlice<UInt8>) -> String {
        bytes.map { $0 < 16 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined()
    }
}

/// Reads the fields of one protobuf message in the wire format: each field's number and value,
/// in order. Enough for reading: varints, 64- and 32-bit fixed values, and length-delimited values
/// (strings, bytes, nested messages).
struct ProtobufReader {
    enum Value {
        case varint(UInt64)
        case fixed(UInt64)
        case lengthDelimited(ArraySlice<UInt8>)

        func message() throws -> ArraySlice<UInt8> {
            guard case .lengthDelimited(let bytes) = self else { throw OTLPTraces.Malformed(description: "not length-delimited: \(self)") }
            return bytes
        }

        func string() throws -> String {
            String(decoding: try message(), as: UTF8.self)
        }

        func varint() throws -> UInt64 {
            guard case .varint(let value) = self else { throw OTLPTraces.Malformed(description: "not a varint: \(self)") }
            return value
        }
    }

    private var bytes: ArraySlice<UInt8>

    init(_ bytes: ArraySlice<UInt8>) {
        self.bytes = bytes
    }

    /// The next field, or nil at the end of the message.
    mutating func next() throws -> (number: Int, value: Value)? {
        guard !bytes.isEmpty else { return nil }
        let tag = try readVarint()
        let number = Int(tag >> 3)
        switch tag & 7 {
        case 0:
            return (number, .varint(try readVarint()))
        case 1:
            return (number, .fixed(try readFixed(8)))
        case 2:
            let length = try readVarint()
            guard length <= bytes.count else { throw OTLPTraces.Malformed(description: "field \(number): \(length) bytes past the end") }
            let value = bytes.prefix(Int(length))
            bytes = bytes.dropFirst(Int(length))
            return (number, .lengthDelimited(value))
        case 5:
            return (number, .fixed(try readFixed(4)))
        default:
            throw OTLPTraces.Malformed(description: "field \(number): wire type \(tag & 7)")
        }
    }

    private mutating func readVarint() throws -> UInt64 {
        var value: UInt64 = 0
        var shift: UInt64 = 0
        while let byte = bytes.popFirst() {
            guard shift < 64 else { break }
            value |= UInt64(byte & 0x7F) << shift
            if byte & 0x80 == 0 { return value }
            shift += 7
        }
        throw OTLPTraces.Malformed(description: "truncated or overlong varint")
    }

    private mutating func readFixed(_ count: Int) throws -> UInt64 {
        guard bytes.count >= count else { throw OTLPTraces.Malformed(description: "truncated fixed value") }
        var value: UInt64 = 0
        for (index, byte) in bytes.prefix(count).enumerated() {
            value |= UInt64(byte) << (8 * UInt64(index))
        }
        bytes = bytes.dropFirst(count)
        return value
    }
}
