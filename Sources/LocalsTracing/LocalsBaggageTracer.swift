#if Tracing
public import Instrumentation
public import Locals
public import Tracing

/// A tracer that adds ``LocalsBaggage`` to another tracer's propagation: spans are the wrapped
/// tracer's, and every inject and extract runs the wrapped tracer's and then the baggage's.
///
/// HTTP clients inject through the tracer, not through any instrument: AsyncHTTPClient takes
/// `InstrumentationSystem.tracer` when its configuration is made and calls that tracer's `inject`
/// for every request, and `InstrumentationSystem.tracer` looks only for a `Tracer`. A plain
/// `Instrument` bootstrapped next to a tracer (or alone, in a `MultiplexInstrument`) is skipped,
/// so its baggage never leaves the process. Bootstrapping this wrapper makes the baggage travel:
///
/// ```swift
/// // Baggage only, no tracing: wraps NoOpTracer.
/// InstrumentationSystem.bootstrap(LocalsBaggageTracer(baggage))
///
/// // Baggage next to a real tracer, which keeps its own spans and trace headers:
/// InstrumentationSystem.bootstrap(LocalsBaggageTracer(baggage, wrapping: otelTracer))
/// ```
///
/// Or hand it to one client: `configuration.tracing.tracer = LocalsBaggageTracer(baggage)`.
///
/// If the wrapped tracer writes a `baggage` header of its own, the carrier gets two; wrap a tracer
/// that propagates only trace context (`traceparent`, `tracestate`).
///
/// It can also write chosen Local fields as attributes of every span it starts, read in the task
/// that starts the span:
///
/// ```swift
/// let tracer = LocalsBaggageTracer(baggage, wrapping: otelTracer, spanAttributes: [
///     LocalField("request.id", of: request, at: \.requestID),
/// ])
/// ```
///
/// Its ``LocalsBaggage`` has made every `LocalsSnapshot` carry `ServiceContext.current`, so a
/// callback run in a snapshot injects the request's trace context and baggage.
public struct LocalsBaggageTracer<Wrapped: Tracer>: Tracer {
    /// The wrapped tracer's span type: spans are the wrapped tracer's.
    public typealias Span = Wrapped.Span

    /// The baggage instrument that runs after the wrapped tracer on every inject and extract.
    public let baggage: LocalsBaggage
    /// The tracer that makes the spans and propagates its own context.
    public let wrapped: Wrapped
    /// The fields written as attributes of every span this tracer starts.
    public let spanAttributes: [LocalField]

    /// Wraps `tracer`, adding `baggage` to what it injects and extracts, and `spanAttributes` to
    /// every span it starts.
    ///
    /// ```swift
    /// let tracer = LocalsBaggageTracer(baggage, wrapping: InMemoryTracer(), spanAttributes: [
    ///     LocalField("request.id", of: request, at: \.requestID),
    /// ])
    /// ```
    ///
    /// - Parameters:
    ///   - baggage: The fields that travel as W3C baggage.
    ///   - tracer: The tracer that makes the spans and propagates trace context.
    ///   - spanAttributes: Fields set as string attributes of each span when it starts, read in the
    ///     task that starts it; a nil field is left out. None by default.
    public init(_ baggage: LocalsBaggage, wrapping tracer: Wrapped, spanAttributes: [LocalField] = []) {
        self.baggage = baggage
        self.wrapped = tracer
        self.spanAttributes = spanAttributes
    }

    /// Starts a span of the wrapped tracer, with the ``spanAttributes`` the running task sees.
    public func startSpan<Instant: TracerInstant>(
        _ operationName: String,
        context: @autoclosure () -> ServiceContext,
        ofKind kind: SpanKind,
        at instant: @autoclosure () -> Instant,
        function: String,
        file fileID: String,
        line: UInt
    ) -> Span {
        let span = wrapped.startSpan(
            operationName,
            context: context(),
            ofKind: kind,
            at: instant(),
            function: function,
            file: fileID,
            line: line
        )
        if !spanAttributes.isEmpty {
            span.setAttributes(from: spanAttributes)
        }
        return span
    }

    /// The wrapped tracer's active span for `context`.
    public func activeSpan(identifiedBy context: ServiceContext) -> Span? {
        wrapped.activeSpan(identifiedBy: context)
    }

    /// Flushes the wrapped tracer.
    @available(*, deprecated, message: "Flush the wrapped tracer through its own API")
    public func forceFlush() {
        wrapped.forceFlush()
    }

    /// Injects the wrapped tracer's context, then the baggage (see ``LocalsBaggage/inject(_:into:using:)``).
    public func inject<Carrier, Inject>(
        _ context: ServiceContext,
        into carrier: inout Carrier,
        using injector: Inject
    ) where Inject: Injector, Inject.Carrier == Carrier {
        wrapped.inject(context, into: &carrier, using: injector)
        baggage.inject(context, into: &carrier, using: injector)
    }

    /// Extracts the wrapped tracer's context, then the baggage (see ``LocalsBaggage/extract(_:into:using:)``).
    public func extract<Carrier, Extract>(
        _ carrier: Carrier,
        into context: inout ServiceContext,
        using extractor: Extract
    ) where Extract: Extractor, Extract.Carrier == Carrier {
        wrapped.extract(carrier, into: &context, using: extractor)
        baggage.extract(carrier, into: &context, using: extractor)
    }
}

extension LocalsBaggageTracer where Wrapped == NoOpTracer {
    /// A tracer that propagates `baggage` and records no spans: baggage without tracing.
    ///
    /// ```swift
    /// InstrumentationSystem.bootstrap(LocalsBaggageTracer(baggage))
    /// ```
    public init(_ baggage: LocalsBaggage) {
        self.init(baggage, wrapping: NoOpTracer())
    }
}

extension Span {
    /// Sets each field the running task sees as a string attribute of the span; a nil field is
    /// left out (an attribute already set under its key stays).
    ///
    /// ```swift
    /// try await withSpan("checkout") { span in
    ///     span.setAttributes(from: [LocalField("tenant", of: request, at: \.tenant)])
    /// }
    /// ```
    ///
    /// - Parameter fields: The fields to set, each under its key.
    public func setAttributes(from fields: [LocalField]) {
        guard isRecording else { return }
        for field in fields {
            if let text = field.currentValue {
                attributes[field.key] = text
            }
        }
    }
}
#endif
