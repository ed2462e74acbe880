/** When the OTEL_* variables start the SDK (docs/tracing.md, "Configuration"). */
import { describe, expect, it } from "vitest";
import { startTracing, tracesExporters } from "./sdk.ts";

describe("tracesExporters", () => {
  it("is off with nothing set, and on with an OTLP endpoint", () => {
    expect(tracesExporters({})).toEqual([]);
    expect(tracesExporters({ OTEL_SERVICE_NAME: "x" })).toEqual([]);
    expect(tracesExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toEqual(["otlp"]);
    expect(tracesExporters({ OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: "http://collector:4318/v1/traces" })).toEqual(["otlp"]);
    expect(tracesExporters({ OTEL_EXPORTER_OTLP_ENDPOINT: " " })).toEqual([]);
  });

  it("follows OTEL_TRACES_EXPORTER, where none wins", () => {
    expect(tracesExporters({ OTEL_TRACES_EXPORTER: "otlp" })).toEqual(["otlp"]);
    expect(tracesExporters({ OTEL_TRACES_EXPORTER: "console, OTLP" })).toEqual(["console", "otlp"]);
    expect(tracesExporters({ OTEL_TRACES_EXPORTER: "none", OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4318" })).toEqual([]);
    expect(() => tracesExporters({ OTEL_TRACES_EXPORTER: "zipkin" })).toThrow(/zipkin/);
  });

  it("is off when OTEL_SDK_DISABLED is true", () => {
    expect(tracesExporters({ OTEL_SDK_DISABLED: "TRUE", OTEL_TRACES_EXPORTER: "otlp" })).toEqual([]);
    expect(tracesExporters({ OTEL_SDK_DISABLED: "false", OTEL_TRACES_EXPORTER: "otlp" })).toEqual(["otlp"]);
  });
});

describe("startTracing", () => {
  it("starts nothing when off, and refuses gRPC instead of exporting nowhere", async () => {
    expect((await startTracing({})).enabled).toBe(false);
    await expect(startTracing({ OTEL_EXPORTER_OTLP_ENDPOINT: "http://collector:4317", OTEL_EXPORTER_OTLP_PROTOCOL: "grpc" })).rejects.toThrow(/grpc/);
  });
});

describe("an SDK registered before Baton's", () => {
  it("is left in place: Baton registers nothing and closes nothing", async () => {
    const { trace, ProxyTracerProvider } = await import("@opentelemetry/api");
    const theirs = new ProxyTracerProvider();
    expect(trace.setGlobalTracerProvider(theirs)).toBe(true);
    try {
      const handle = await startTracing({ OTEL_TRACES_EXPORTER: "console" });
      expect(handle.enabled).toBe(false);
      await handle.close();
      expect(trace.getTracerProvider()).not.toBe(undefined);
      expect(trace.setGlobalTracerProvider(new ProxyTracerProvider())).toBe(false);
    } finally {
      trace.disable();
    }
  });
});
