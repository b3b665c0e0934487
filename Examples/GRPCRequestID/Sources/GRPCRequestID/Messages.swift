public import GRPCCore

#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// What a client sends to both methods: `{"text": "..."}`.
public struct EchoRequest: Codable, Sendable, Equatable {
    /// The text to echo, or the name to expand.
    public var text: String

    /// A request with `text`.
    public init(text: String) {
        self.text = text
    }
}

/// What the server answers: `{"text": "...", "requestID": "..."}`.
public struct EchoReply: Codable, Sendable, Equatable {
    /// The answer.
    public var text: String
    /// The call's id, read from `currentCall` when the message was made.
    public var requestID: String

    /// A reply with `text` and `requestID`.
    public init(text: String, requestID: String) {
        self.text = text
        self.requestID = requestID
    }
}

/// Codes a message as JSON, in place of protobuf: the service needs no code generator.
public struct JSONSerializer<Message: Encodable>: MessageSerializer {
    /// A serializer for `Message`.
    public init() {}

    /// The message as JSON bytes.
    public func serialize<Bytes: GRPCContiguousBytes>(_ message: Message) throws -> Bytes {
        Bytes(try JSONEncoder().encode(message))
    }
}

/// Decodes a JSON message; bytes that are not one become an `invalidArgument` status.
public struct JSONDeserializer<Message: Decodable>: MessageDeserializer {
    /// A deserializer for `Message`.
    public init() {}

    /// The message the JSON bytes hold.
    public func deserialize<Bytes: GRPCContiguousBytes>(_ serializedMessageBytes: Bytes) throws -> Message {
        do {
            return try serializedMessageBytes.withUnsafeBytes { try JSONDecoder().decode(Message.self, from: Data($0)) }
        } catch {
            throw RPCError(code: .invalidArgument, message: "The message is not the JSON expected.")
        }
    }
}
