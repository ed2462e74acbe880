/**
 * OpenTelemetry spans of a run (docs/tracing.md), written against
 * `@opentelemetry/api` only: until an SDK registers (src/tracing/sdk.ts,
 * started only when the OTEL_* variables ask for one) every call here goes
 * to the API's no-op tracer and propagator, so tracing off costs a few
 * allocations per run and nothing is stored or attached.
 *
 * The trace crosses the queue in the run's kwargs (`trace`, W3C
 * traceparent/tracestate): the request's context is written there when the
 * run is created, and whichever worker claims the run, in whichever process
 * or execution thread, parents its spans on it.
 */
import { context, propagation, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from "@opentelemetry/api";
import { BaseCallbackHandler } from "@langchain/core/callbacks/base";
import type { Run, RunTrace } from "./types.ts";

/** The instrumentation scope of Baton's spans. */
export const TRACER_NAME = "baton";

/** Asked per use, not kept: a tracer taken before an SDK registers would stay the no-op one. */
const tracer = () => trace.getTracer(TRACER_NAME);

/**
 * The active context as W3C headers, to store with a run; null when there
 * is nothing to carry (no SDK registered, or no span active).
 */
export function currentRunTrace(): RunTrace | null {
  const carrier: Record<string, string> = {};
  propagation.inject(context.active(), carrier);
  const traceparent = carrier.traceparent;
  if (traceparent === undefined) return null;
  return carrier.tracestate === undefined ? { traceparent } : { traceparent, tracestate: carrier.tracestate };
}

/** The context a run was created in, read back from its kwargs (the root context when it carries none). */
function runContext(run: Run): Context {
  const carried = run.kwargs.trace;
  if (carried === undefined || carried === null) return ROOT_CONTEXT;
  return propagation.extract(ROOT_CONTEXT, carried);
}

/** The attributes every run span has. */
function runAttributes(run: Run): Record<string, string | number> {
  return { "baton.run_id": run.run_id, "baton.thread_id": run.thread_id, "baton.graph_id": run.graph_id, "baton.assistant_id": run.assistant_id, "baton.attempt": run.attempt };
}

/** The execution of one claimed attempt: end it with `end(status)`; run the graph inside `context`. */
export interface RunSpan {
  readonly context: Context;
  end(status: string, error?: string): void;
}

/**
 * At a claim: records `run.queued` (from when the run could first start,
 * its creation or its `after_seconds`, to now) and opens `run.execute`,
 * both children of the context the run was created in.
 */
export function startRunSpans(run: Run, nowMs: number): RunSpan {
  const parent = runContext(run);
  const attributes = runAttributes(run);
  const queuedSince = Math.min(nowMs, Math.max(Date.parse(run.created_at), run.available_at_ms));
  tracer().startSpan("run.queued", { kind: SpanKind.CONSUMER, startTime: queuedSince, attributes }, parent).end(nowMs);
  const span = tracer().startSpan("run.execute", { kind: SpanKind.INTERNAL, startTime: nowMs, attributes }, parent);
  return {
    context: trace.setSpan(parent, span),
    end(status, error) {
      span.setAttribute("baton.run.status", status);
      if (error !== undefined || status === "error" || status === "crashed") span.setStatus({ code: SpanStatusCode.ERROR, ...(error === undefined ? {} : { message: error }) });
      span.end();
    },
  };
}

/**
 * A span per LangGraph node, children of the active span (`run.execute`)
 * or of the node whose subgraph they run in. LangGraph marks a node's own
 * chain with `langgraph_node` metadata naming it; the runnables inside a
 * node inherit that metadata under their own names, so they are skipped and
 * stand for their nearest node when they parent one. LangGraph's own steps
 * (`__start__`) get no span.
 */
class NodeSpans extends BaseCallbackHandler {
  name = "baton_otel_nodes";
  // Spans open and close when the node does, not when a background queue gets to it.
  override awaitHandlers = true;
  readonly #root: Context;
  /** Per LangChain run id: the context its children are parented on, and its own span when it is a node. */
  readonly #runs = new Map<string, { context: Context; span?: Span }>();

  constructor(root: Context) {
    super();
    this.#root = root;
  }

  // The callback manager passes (chain, inputs, runId, parentRunId, tags, metadata, runType, runName),
  // whatever the declaration's parameter names say (@langchain/core callbacks/manager.js).
  override handleChainStart(_chain: unknown, _inputs: unknown, runId: string, parentRunId?: string, _tags?: string[], metadata?: Record<string, unknown>, _runType?: string, runName?: string): void {
    const parent = (parentRunId === undefined ? undefined : this.#runs.get(parentRunId)?.context) ?? this.#root;
    const node = metadata?.langgraph_node;
    // LangGraph's own bookkeeping steps (`__start__`) are left out, as from the run's events.
    if (typeof node !== "string" || node !== runName || node.startsWith("__")) {
      this.#runs.set(runId, { context: parent });
      return;
    }
    const attributes: Record<string, string | number> = { "langgraph.node": node };
    if (typeof metadata?.langgraph_step === "number") attributes["langgraph.step"] = metadata.langgraph_step;
    if (typeof metadata?.thread_id === "string") attributes["baton.thread_id"] = metadata.thread_id;
    const span = tracer().startSpan(`node ${node}`, { attributes }, parent);
    this.#runs.set(runId, { context: trace.setSpan(parent, span), span });
  }

  override handleChainEnd(_outputs: unknown, runId: string): void {
    this.#runs.get(runId)?.span?.end();
    this.#runs.delete(runId);
  }

  override handleChainError(error: unknown, runId: string): void {
    const span = this.#runs.get(runId)?.span;
    if (span !== undefined) {
      // A graph interrupt is how a node pauses, not a failure.
      const name = error instanceof Error ? error.name : "Error";
      if (!/interrupt/i.test(name)) span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : String(error) });
      span.setAttribute("langgraph.outcome", name);
      span.end();
    }
    this.#runs.delete(runId);
  }
}

/**
 * The callback handler that traces the graph's nodes, when the active span
 * records (an SDK is registered and sampled this run); otherwise undefined,
 * and the graph runs with no handler of Baton's.
 */
export function nodeSpanHandler(): BaseCallbackHandler | undefined {
  const active = context.active();
  return trace.getSpan(active)?.isRecording() === true ? new NodeSpans(active) : undefined;
}
