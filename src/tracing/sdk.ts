/**
 * The OpenTelemetry SDK, started only when the standard OTEL_* variables
 * ask for traces (docs/tracing.md). Everything else in Baton speaks to
 * `@opentelemetry/api`, which stays a no-op until this registers a tracer
 * provider, so with the variables unset no SDK is loaded and no span is
 * recorded.
 *
 * Once per thread, shared: the API's globals are per thread (each execution
 * thread starts its own), and a process may hold several servers (tests, an
 * embedding application); the first `startTracing` registers, the last
 * handle closed flushes and unregisters.
 */
import { context, propagation, trace } from "@opentelemetry/api";
import type { NodeTracerProvider, SpanProcessor } from "@opentelemetry/sdk-trace-node";

/** The service name when OTEL_SERVICE_NAME (or service.name in OTEL_RESOURCE_ATTRIBUTES) gives none. */
export const DEFAULT_SERVICE_NAME = "baton";

/** A started (or not started) SDK: `close` flushes the spans still queued; idempotent. */
export interface TracingHandle {
  readonly enabled: boolean;
  close(): Promise<void>;
}

type Env = Readonly<Record<string, string | undefined>>;

const set = (value: string | undefined) => value !== undefined && value.trim() !== "";

/**
 * The exporters the variables ask for: OTEL_TRACES_EXPORTER when set
 * (`otlp`, `console`, `none`, comma-separated); otherwise `otlp` when an OTLP
 * endpoint is given, else none. OTEL_SDK_DISABLED=true turns it all off.
 */
export function tracesExporters(env: Env): string[] {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === "true") return [];
  if (set(env.OTEL_TRACES_EXPORTER)) {
    const names = env.OTEL_TRACES_EXPORTER!.split(",").map((name) => name.trim().toLowerCase()).filter((name) => name !== "");
    if (names.includes("none")) return [];
    const unknown = names.filter((name) => name !== "otlp" && name !== "console");
    if (unknown.length > 0) throw new Error(`OTEL_TRACES_EXPORTER names ${unknown.join(", ")}, which Baton does not export to: use otlp (OTLP over HTTP, JSON), console, or none.`);
    return [...new Set(names)];
  }
  return set(env.OTEL_EXPORTER_OTLP_ENDPOINT) || set(env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) ? ["otlp"] : [];
}

/**
 * Baton's OTLP exporter speaks OTLP over HTTP with the JSON encoding, which
 * every OTLP/HTTP receiver accepts on the same path as protobuf; gRPC is a
 * different port and transport, so asking for it is refused at start rather
 * than exporting nowhere.
 */
function requireHttpProtocol(env: Env): void {
  const protocol = (env.OTEL_EXPORTER_OTLP_TRACES_PROTOCOL ?? env.OTEL_EXPORTER_OTLP_PROTOCOL)?.trim().toLowerCase();
  if (protocol === "grpc") throw new Error("OTEL_EXPORTER_OTLP_PROTOCOL is grpc, which Baton does not export with: point OTEL_EXPORTER_OTLP_ENDPOINT at the collector's OTLP/HTTP port (4318) and unset the protocol or set http/json (docs/tracing.md).");
}

let shared: { provider: NodeTracerProvider; users: number } | undefined;

const OFF: TracingHandle = { enabled: false, close: async () => undefined };

/**
 * Starts the SDK when `env` asks for traces, else does nothing. The OTLP
 * exporter, the batch processor, the sampler and span limits read their
 * own OTEL_* variables (endpoint, headers, timeout, compression, OTEL_BSP_*,
 * OTEL_TRACES_SAMPLER, ...); the resource reads OTEL_SERVICE_NAME and
 * OTEL_RESOURCE_ATTRIBUTES.
 */
export async function startTracing(env: Env = process.env): Promise<TracingHandle> {
  const exporters = tracesExporters(env);
  if (exporters.length === 0) return OFF;
  if (exporters.includes("otlp")) requireHttpProtocol(env);
  if (shared === undefined) {
    // Loaded here, so a Baton with tracing off never loads the SDK.
    const [{ OTLPTraceExporter }, { detectResources, envDetector, resourceFromAttributes }, { BatchSpanProcessor, ConsoleSpanExporter, NodeTracerProvider }] = await Promise.all([
      import("@opentelemetry/exporter-trace-otlp-http"),
      import("@opentelemetry/resources"),
      import("@opentelemetry/sdk-trace-node"),
    ]);
    // Another server of this thread may have registered while these loaded.
    if (shared === undefined) {
      const spanProcessors: SpanProcessor[] = exporters.map((name) => new BatchSpanProcessor(name === "otlp" ? new OTLPTraceExporter() : new ConsoleSpanExporter()));
      const resource = resourceFromAttributes({ "service.name": DEFAULT_SERVICE_NAME }).merge(detectResources({ detectors: [envDetector] }));
      const provider = new NodeTracerProvider({ resource, spanProcessors });
      // An SDK the application preloaded (node --import) owns the globals: Baton's spans go to it, and Baton registers nothing.
      if (!trace.setGlobalTracerProvider(provider)) {
        await provider.shutdown();
        return OFF;
      }
      // Then the AsyncLocalStorage context manager and the W3C trace context and baggage propagators.
      provider.register();
      shared = { provider, users: 0 };
    }
  }
  const current = shared;
  current.users += 1;
  let closed: Promise<void> | undefined;
  return {
    enabled: true,
    close: () =>
      (closed ??= (async () => {
        current.users -= 1;
        if (current.users > 0 || shared !== current) return;
        shared = undefined;
        // Unregistered first, so nothing records into a provider being shut down.
        trace.disable();
        context.disable();
        propagation.disable();
        await current.provider.shutdown();
      })()),
  };
}
