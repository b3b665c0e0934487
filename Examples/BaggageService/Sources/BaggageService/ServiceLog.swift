#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Locals
import LocalsLogging
public import Logging

extension Logger.MetadataProvider {
    /// Adds `tenant` and `request-id` to every line logged while a request is handled, read from
    /// ``currentRequest`` in the task that writes the line: the handler's, or a child task's.
    /// Outside a request it adds nothing.
    ///
    /// ```swift
    /// let logger = Logger(label: "service") { label in
    ///     ServiceLogHandler(label: label, metadataProvider: .requestBaggage)
    /// }
    /// ```
    public static let requestBaggage = Logger.MetadataProvider.locals([
        LocalField("tenant", of: currentRequest, at: \.tenant),
        LocalField("request-id", of: currentRequest, at: \.requestID),
    ])
}

/// Writes one line per log event, with `tenant` and `request-id` first, in that order, so that a
/// request can be followed with one grep in every service's output:
///
/// ```text
/// 2025-06-01T10:00:00Z info service-a: tenant=acme request-id=r-1 name=ann [BaggageService] hello requested
/// ```
///
/// A field that is absent shows as `-`. The other metadata follows, sorted by key.
public struct ServiceLogHandler: LogHandler {
    /// Metadata set on the logger itself, written on every line.
    public var metadata: Logger.Metadata = [:]
    /// Adds metadata from the task that logs; its values win over the logger's.
    public var metadataProvider: Logger.MetadataProvider?
    /// The lowest level written.
    public var logLevel: Logger.Level = .info
    let label: String
    let stream: any TextOutputStream & Sendable

    /// - Parameters:
    ///   - label: The logger's label, shown after the level.
    ///   - stream: Where lines go; standard output by default.
    ///   - metadataProvider: Adds task-dependent metadata, such as ``Logging/Logger/MetadataProvider/requestBaggage``.
    public init(
        label: String,
        stream: any TextOutputStream & Sendable = StandardOutput(),
        metadataProvider: Logger.MetadataProvider?
    ) {
        self.label = label
        self.stream = stream
        self.metadataProvider = metadataProvider
    }

    /// One value of the logger's own metadata.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    /// Writes `event` as one line: the logger's metadata, then the provider's, then the event's
    /// own, later ones winning for the same key.
    public func log(event: LogEvent) {
        var all = metadata
        if let provided = metadataProvider?.get() {
            all.merge(provided) { _, provided in provided }
        }
        if let given = event.metadata {
            all.merge(given) { _, given in given }
        }
        let tenant = all.removeValue(forKey: "tenant").map { "\($0)" } ?? "-"
        let requestID = all.removeValue(forKey: "request-id").map { "\($0)" } ?? "-"
        let rest = all.sorted { $0.key < $1.key }.map { " \($0.key)=\($0.value)" }.joined()
        var stream = stream
        stream.write(
            "\(Date.now.formatted(.iso8601)) \(event.level) \(label): tenant=\(tenant) request-id=\(requestID)"
                + "\(rest) [\(event.source)] \(event.message)\n"
        )
    }
}

/// Standard output, written with one system call per line, so that lines from concurrent requests
/// never interleave and reach a file or a pipe at once.
public struct StandardOutput: TextOutputStream, Sendable {
    /// Standard output of this process.
    public init() {}

    /// Writes `string` with as few system calls as the system allows: one, for a log line.
    public mutating func write(_ string: String) {
        var string = string
        string.withUTF8 { bytes in
            var offset = 0
            while offset < bytes.count {
                let written = systemWrite(STDOUT_FILENO, bytes.baseAddress! + offset, bytes.count - offset)
                if written > 0 {
                    offset += written
                } else if written < 0 && errno == EINTR {
                    continue
                } else {
                    return  // standard output is gone: there is nowhere to report it
                }
            }
        }
    }
}

#if canImport(Glibc)
private let systemWrite = Glibc.write
#elseif canImport(Darwin)
private let systemWrite = Darwin.write
#endif
