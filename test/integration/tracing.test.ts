/**
 * Issue 13, item 2: OpenTelemetry traces (docs/tracing.md). A tiny OTLP/HTTP
 * receiver in this test collects what Baton exports when the OTEL_*
 * variables point at it: a request that creates a run and waits for it must
 * give one trace (the caller's) holding the HTTP span, run.queued,
 * run.execute and the graph's nodes, parented as documented. The servers'
 * close flushes every exporter (the HTTP thread's and an execution
 * thread's), so the spans are all in once close resolves: nothing is polled.
 * With the variables unset, no SDK starts and a run gets no handler.
 * Runs on every project: an execution thread (its own SDK), inline, scale-out.
 */
import { createServer as createHttpServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import Database from "better-sqlite3";
import { ROOT_CONTEXT, context, trace, type ProxyTracerProvider } from "@opentelemetry/api";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { nodeSpanHandler, startRunSpans } from "../../src/core/tracing.ts";
import type { Run } from "../../src/core/types.ts";
import { human, SCALE_OUT, startServer, type TestServer } from "../helpers/server.ts";

/** A span as the OTLP JSON encoding spells it, with its resource's service name. */
interface ExportedSpan {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind: number;
  startTimeUnixNano: string;
  endTimeUnixNano: string;
  attributes: { key: string; value: { stringValue?: string; intValue?: string | number } }[];
  service: string | undefined;
}

interface OtlpBody {
  resourceSpans: { resource?: { attributes?: ExportedSpan["attributes"] }; scopeSpans: { spans: Omit<ExportedSpan, "service">[] }[] }[];
}

/** Accepts POST /v1/traces in the OTLP JSON encoding and keeps every span. */
function receiver(): Promise<{ server: Server; url: string; spans: ExportedSpan[]; contentTypes: string[] }> {
  const spans: ExportedSpan[] = [];
  const contentTypes: string[] = [];
  const server = createHttpServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (chunk: Buffer) => chunks.push(chunk));
    req.on("end", () => {
      if (req.method !== "POST" || req.url !== "/v1/traces") {
        res.writeHead(404).end();
        return;
      }
      contentTypes.push(req.headers["content-type"] ?? "");
      const body = JSON.parse(Buffer.concat(chunks).toString("utf8")) as OtlpBody;
      for (const resource of body.resourceSpans) {
        const service = resource.resource?.attributes?.find((a) => a.key === "service.name")?.value.stringValue;
        for (const scope of resource.scopeSpans) for (const span of scope.spans) spans.push({ ...span, service });
      }
      res.writeHead(200, { "Content-Type": "application/json" }).end("{}");
    });
  });
  return new Promise((resolve) =>
    server.listen(0, "127.0.0.1", () => resolve({ server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, spans, contentTypes })),
  );
}

const attribute = (span: ExportedSpan, key: string) => {
  const value = span.attributes.find((a) => a.key === key)?.value;
  return value?.stringValue ?? (value?.intValue === undefined ? undefined : Number(value.intValue));
};

/** The OTEL_* variables of this process, cleared, and a function that puts them back. */
function clearOtelEnv(): () => void {
  const saved = Object.entries(process.env).filter(([key]) => key.startsWith("OTEL_"));
  for (const [key] of saved) delete process.env[key];
  return () => {
    for (const key of Object.keys(process.env)) if (key.startsWith("OTEL_")) delete process.env[key];
    for (const [key, value] of saved) process.env[key] = value;
  };
}

/** The trace context stored with a run (embedded: read from the SQLite file; scale-out: not read here). */
function storedTrace(baton: TestServer, runId: string): unknown {
  const db = new Database(join(baton.dataDir, "baton.sqlite"), { readonly: true });
  try {
    const row = db.prepare("SELECT kwargs FROM runs WHERE run_id = ?").get(runId) as { kwargs: string };
    return (JSON.parse(row.kwargs) as { trace?: unknown }).trace;
  } finally {
    db.close();
  }
}

const TRACE_ID = "0af7651916cd43dd8448eb211c80319c";
const CALLER_SPAN = "b7ad6b7169203331";

/** A run record enough for the span helpers. */
const someRun = (): Run =>
  ({
    run_id: "r",
    thread_id: "t",
    assistant_id: "a",
    graph_id: "g",
    attempt: 1,
    created_at: new Date().toISOString(),
    available_at_ms: Date.now(),
    kwargs: { trace: { traceparent: `00-${TRACE_ID}-${CALLER_SPAN}-01` } },
  }) as unknown as Run;

describe("tracing on (OTEL_EXPORTER_OTLP_ENDPOINT set)", () => {
  let sink: Awaited<ReturnType<typeof receiver>>;
  let restore: () => void;
  let runIds: { two: string; nested: string; thread: string };
  let spans: ExportedSpan[];
  let handlerWhileOn: unknown;
  let stored: unknown;

  beforeAll(async () => {
    sink = await receiver();
    restore = clearOtelEnv();
    // Set before the server starts: an execution thread copies the environment when it is spawned.
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = sink.url;
    try {
      const baton = await startServer();
      try {
        // While the server is up, the API's globals hold a real SDK: a recording run span gets a handler.
        const span = startRunSpans(someRun(), Date.now());
        handlerWhileOn = context.with(span.context, nodeSpanHandler);
        span.end("success");
        const traceparent = `00-${TRACE_ID}-${CALLER_SPAN}-01`;
        const { Client } = await import("@langchain/langgraph-sdk");
        const client = new Client({ apiUrl: baton.url, defaultHeaders: { traceparent } });
        const thread = await client.threads.create();
        const two = await client.runs.create(thread.thread_id, "two_step", { input: human("hi") });
        await client.runs.join(thread.thread_id, two.run_id);
        const nested = await client.runs.wait(thread.thread_id, "nested", { input: human("again") }).then(() => client.runs.list(thread.thread_id, { limit: 1 }));
        if (!SCALE_OUT) stored = storedTrace(baton, two.run_id);
        runIds = { two: two.run_id, nested: nested[0]!.run_id, thread: thread.thread_id };
        // The carried context is Baton's own: the wire record shows no `trace`.
        const record = (await client.runs.get(thread.thread_id, two.run_id)) as unknown as { kwargs: Record<string, unknown> };
        expect(Object.keys(record.kwargs)).toContain("input");
        expect(Object.keys(record.kwargs)).not.toContain("trace");
      } finally {
        // Flushes every exporter: the HTTP thread's and each execution thread's.
        await baton.close();
      }
    } finally {
      restore();
    }
    spans = sink.spans;
  });

  afterAll(async () => {
    await new Promise<void>((done) => sink.server.close(() => done()));
  });

  it("a recording run span gets a node handler while the SDK is started, and none after the server closed it", () => {
    expect(handlerWhileOn).toBeDefined();
    expect(((trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as object).constructor.name).toBe("NoopTracerProvider");
  });

  it.skipIf(SCALE_OUT)("stores the request's span context with the run, in its kwargs", () => {
    const create = spans.find((s) => s.name === "POST /threads/:thread_id/runs");
    expect(stored).toEqual({ traceparent: `00-${TRACE_ID}-${create!.spanId}-01` });
  });

  it("exports OTLP JSON with the default service name", () => {
    expect(sink.contentTypes.length).toBeGreaterThan(0);
    for (const type of sink.contentTypes) expect(type).toMatch(/application\/json/);
    for (const span of spans) expect(span.service).toBe("baton");
  });

  it("the request, the run's queue time, its execution and its nodes are one trace under the caller's span", () => {
    const ofRun = (runId: string) => spans.filter((s) => attribute(s, "baton.run_id") === runId);
    const create = spans.find((s) => s.name === "POST /threads/:thread_id/runs");
    expect(create, spans.map((s) => s.name).join(", ")).toBeDefined();
    expect(create!.traceId).toBe(TRACE_ID);
    expect(create!.parentSpanId).toBe(CALLER_SPAN);
    expect(create!.kind).toBe(2); // SERVER
    expect(attribute(create!, "http.response.status_code")).toBe(200);

    const [queued] = ofRun(runIds.two).filter((s) => s.name === "run.queued");
    const [execute] = ofRun(runIds.two).filter((s) => s.name === "run.execute");
    expect(queued).toBeDefined();
    expect(execute).toBeDefined();
    for (const span of [queued!, execute!]) {
      expect(span.traceId).toBe(TRACE_ID);
      // Children of the request that created the run, across the queue.
      expect(span.parentSpanId).toBe(create!.spanId);
      expect(attribute(span, "baton.thread_id")).toBe(runIds.thread);
      expect(attribute(span, "baton.graph_id")).toBe("two_step");
      expect(attribute(span, "baton.attempt")).toBe(1);
    }
    expect(attribute(execute!, "baton.run.status")).toBe("success");
    // The queue time ends where the execution starts.
    expect(BigInt(queued!.endTimeUnixNano)).toBeLessThanOrEqual(BigInt(execute!.startTimeUnixNano));
    expect(BigInt(queued!.startTimeUnixNano)).toBeLessThanOrEqual(BigInt(queued!.endTimeUnixNano));

    const nodes = spans.filter((s) => s.parentSpanId === execute!.spanId);
    expect(nodes.map((s) => s.name).sort()).toEqual(["node first", "node second"]);
    for (const node of nodes) expect(node.traceId).toBe(TRACE_ID);
    expect(nodes.map((s) => attribute(s, "langgraph.node")).sort()).toEqual(["first", "second"]);
  });

  it("a subgraph's nodes are children of the node that runs it", () => {
    const wait = spans.find((s) => s.name === "POST /threads/:thread_id/runs/wait");
    expect(wait).toBeDefined();
    expect(wait!.traceId).toBe(TRACE_ID);
    const execute = spans.find((s) => s.name === "run.execute" && attribute(s, "baton.run_id") === runIds.nested);
    expect(execute?.parentSpanId).toBe(wait!.spanId);
    const child = spans.find((s) => s.name === "node child" && s.parentSpanId === execute!.spanId);
    const after = spans.find((s) => s.name === "node after" && s.parentSpanId === execute!.spanId);
    expect(child).toBeDefined();
    expect(after).toBeDefined();
    const inner = spans.filter((s) => s.name === "node inner");
    expect(inner).toHaveLength(1);
    expect(inner[0]!.parentSpanId).toBe(child!.spanId);
  });

  it("reads and other requests get spans named by their route template, never their ids", () => {
    const names = new Set(spans.filter((s) => s.kind === 2).map((s) => s.name));
    expect(names).toContain("POST /threads");
    expect(names).toContain("GET /threads/:thread_id/runs/:run_id/join");
    for (const name of names) expect(name).not.toContain(runIds.thread);
  });
});

describe("tracing off (no OTEL_* set)", () => {
  it("starts no SDK, stores no context with runs and attaches no handler", async () => {
    const restore = clearOtelEnv();
    try {
      const baton = await startServer();
      try {
        expect(((trace.getTracerProvider() as ProxyTracerProvider).getDelegate() as object).constructor.name).toBe("NoopTracerProvider");
        const thread = await baton.client.threads.create();
        const run = await baton.client.runs.create(thread.thread_id, "echo", { input: human("quiet") });
        await baton.client.runs.join(thread.thread_id, run.run_id);
        if (!SCALE_OUT) expect(storedTrace(baton, run.run_id)).toBeUndefined();
        expect((await baton.client.runs.get(thread.thread_id, run.run_id)).status).toBe("success");
        // The same run span that gets a handler when on is a non-recording no-op here: no handler.
        const span = startRunSpans(someRun(), Date.now());
        expect(context.with(span.context, nodeSpanHandler)).toBeUndefined();
        expect(trace.getSpan(span.context)?.isRecording()).toBe(false);
        expect(context.with(ROOT_CONTEXT, nodeSpanHandler)).toBeUndefined();
        span.end("success");
      } finally {
        await baton.close();
      }
    } finally {
      restore();
    }
  });
});
