#if GRPC
import GRPCCore
import Instrumentation

/// Reads a text value of gRPC metadata for an instrument (the `baggage` member list).
///
/// Several values under one key are joined by commas, as HTTP joins repeated headers, which is
/// how W3C baggage reads a list spread over several headers. Binary (`-bin`) values are ignored.
struct MetadataExtractor: Extractor {
    func extract(key: String, from carrier: Metadata) -> String? {
        let values = Array(carrier[stringValues: key])
        return values.isEmpty ? nil : values.joined(separator: ",")
    }
}

/// Writes an instrument's text value into gRPC metadata, replacing any value under its key.
struct MetadataInjector: Injector {
    func inject(_ value: String, forKey key: String, into carrier: inout Metadata) {
        carrier.replaceOrAddString(value, forKey: key)
    }
}
#endif
