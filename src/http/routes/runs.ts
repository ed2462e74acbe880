import type { Context } from "hono";
import { Hono } from "hono";
import { BatonError, ErrorCode, notFound } from "../../core/errors.ts";
import type { CreateRunInput } from "../../core/runs.ts";
import { isFinalRunStatus, type Run, type RunEvent, type StreamMode } from "../../core/types.ts";
import { configurableHeaders } from "../configurable-headers.ts";
import type { HttpDeps } from "../deps.ts";
import type { HeaderRule } from "../project-options.ts";
import { wireRun } from "../records.ts";
import * as s from "../schemas.ts";
import { jsonWhenReady, sseResponse } from "../sse.ts";
import { body, flag, parse, readJson, uuidParam } from "../validate.ts";

/** An error about one entry of a batch, naming the entry (its status kept). */
function atIndex(index: number, error: unknown): unknown {
  if (!(error instanceof BatonError)) return error;
  return new BatonError(error.code, `Run ${index}: ${error.message}`, {
    cause: error,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
  });
}

/** Fields of the contract Baton does not implement: refused, never ignored. */
function refuseUnsupported(input: s.RunCreate): void {
  const refuse = (field: string, why: string) => {
    throw new BatonError(ErrorCode.unsupported, `Field '${field}' is not supported by Baton: ${why}`);
  };
  if (input.feedback_keys && input.feedback_keys.length > 0) refuse("feedback_keys", "LangSmith feedback is not wired in.");
  if (input.langsmith_tracer !== undefined && input.langsmith_tracer !== null) refuse("langsmith_tracer", "LangSmith tracing is not wired in.");
  if (input.stream_mode_options !== undefined && input.stream_mode_options !== null) refuse("stream_mode_options", "per-mode options are not implemented.");
}

/**
 * The run's config: the body's, with the request headers the project lets
 * through in `configurable` (they win over the body's values, as on the
 * official server), so a graph can read them.
 */
function runConfig(input: s.RunCreate, headers: Record<string, string>): Record<string, unknown> {
  const config = input.config ?? {};
  if (Object.keys(headers).length === 0) return config;
  return { ...config, configurable: { ...config.configurable, ...headers } };
}

function toCreateInput(input: s.RunCreate, threadId: string | null, defaults: { on_completion: "delete" | "keep" }, headers: Record<string, string>): CreateRunInput {
  refuseUnsupported(input);
  const modes = input.stream_mode === undefined ? ["values"] : Array.isArray(input.stream_mode) ? input.stream_mode : [input.stream_mode];
  const durability = input.durability ?? (input.checkpoint_during === false ? "exit" : input.checkpoint_during === true ? "async" : null);
  return {
    thread_id: threadId,
    assistant_id: input.assistant_id,
    metadata: input.metadata ?? {},
    multitask_strategy: input.multitask_strategy ?? "enqueue",
    if_not_exists: input.if_not_exists ?? "reject",
    after_seconds: input.after_seconds ?? 0,
    kwargs: {
      // A command wins over the input, as on the official servers: Agent
      // Chat UI and useStream().submit({}, {command}) send both.
      input: input.command ? null : (input.input ?? null),
      command: input.command ?? null,
      config: runConfig(input, headers),
      context: input.context ?? null,
      stream_mode: (modes.length > 0 ? modes : ["values"]) as StreamMode[],
      stream_subgraphs: input.stream_subgraphs ?? false,
      stream_resumable: input.stream_resumable ?? false,
      interrupt_before: input.interrupt_before ?? null,
      interrupt_after: input.interrupt_after ?? null,
      checkpoint_id: input.checkpoint_id ?? input.checkpoint?.checkpoint_id ?? null,
      checkpoint: input.checkpoint ?? null,
      webhook: input.webhook ?? null,
      on_completion: input.on_completion ?? defaults.on_completion,
      durability,
      on_disconnect: input.on_disconnect ?? "continue",
    },
  };
}

/**
 * Keeps the events a joiner asked for: all (the run's own modes) when no
 * mode is named, or only empty ones (the Python SDK's join_stream sends
 * `stream_mode=` by default).
 */
function modeFilter(named: string[] | undefined): (event: RunEvent) => boolean {
  const modes = (named ?? []).filter((m) => m !== "");
  if (modes.length === 0) return () => true;
  const wanted = new Set(modes.map((m) => (m === "messages-tuple" ? "messages" : m)));
  return (event) => {
    const base = event.event.split("|")[0]!.split("/")[0]!;
    return base === "metadata" || base === "error" || base.startsWith("__") || wanted.has(base);
  };
}

/** What the run routes share: the deps, and how a request becomes a run and a run a response. */
interface RunRouteKit {
  deps: HttpDeps;
  /** The request headers the project passes to the run's `configurable`. */
  headersOf: (c: Context) => Record<string, string>;
  /** Creates the run a request's body describes, on the thread or (null) on a new temporary one. */
  create: (c: Context, threadId: string | null) => Promise<Run>;
  /** The checkpoint a run would start from must exist (404 otherwise). */
  requireCheckpoint: (threadId: string | null, input: CreateRunInput) => Promise<void>;
}

export function runRoutes(deps: HttpDeps, options: { configurableHeaders: HeaderRule }): Hono {
  const app = new Hono();
  const kit = runRouteKit(deps, options);
  threadRunRoutes(app, kit);
  joinRoutes(app, kit);
  cancelRoutes(app, kit);
  statelessRunRoutes(app, kit);
  return app;
}

function runRouteKit(deps: HttpDeps, options: { configurableHeaders: HeaderRule }): RunRouteKit {
  const headersOf = (c: Context) => configurableHeaders(c.req.raw.headers, options.configurableHeaders);
  const requireCheckpoint = (threadId: string | null, input: CreateRunInput) => requireStartCheckpoint(deps, threadId, input);
  return {
    deps,
    headersOf,
    requireCheckpoint,
    create: async (c, threadId) => {
      const input = toCreateInput(parse(s.RunCreate, await readJson(c)), threadId, { on_completion: threadId === null ? "delete" : "keep" }, headersOf(c));
      await requireCheckpoint(threadId, input);
      return deps.runs.create(input);
    },
  };
}

// Content-Location names the run (the SDK's onRunCreated reads it);
// Location names its stream (the SDK reconnects there with Last-Event-ID).
const location = (run: Run) => (run.kwargs.temporary ? `/runs/${run.run_id}` : `/threads/${run.thread_id}/runs/${run.run_id}`);
const streamLocation = (run: Run) => `/threads/${run.thread_id}/runs/${run.run_id}/stream`;

/**
 * A run from a checkpoint the thread does not have is refused (404): LangGraph
 * would start it from an empty state, replacing the conversation. A run
 * without a thread starts on a new one, which has no checkpoint at all.
 */
async function requireStartCheckpoint(deps: HttpDeps, threadId: string | null, input: CreateRunInput): Promise<void> {
  const configurable = input.kwargs.config.configurable ?? {};
  const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
  const ref = {
    checkpoint_id: input.kwargs.checkpoint_id || text(configurable.checkpoint_id),
    checkpoint_ns: input.kwargs.checkpoint?.checkpoint_ns || text(configurable.checkpoint_ns),
  };
  if (threadId !== null) return deps.threadService.requireCheckpoint(threadId, ref);
  if (ref.checkpoint_id !== undefined || ref.checkpoint_ns !== undefined) {
    throw new BatonError(
      ErrorCode.notFound,
      `Checkpoint '${ref.checkpoint_id ?? ref.checkpoint_ns}' not found: a run without a thread starts on a new thread, which has no checkpoints. Run it on its thread (POST /threads/{thread_id}/runs).`,
    );
  }
}

/** Cancels the run when its client goes away, if asked to. */
const cancelOnDisconnect = (deps: HttpDeps, run: Run, enabled: boolean) =>
  enabled
    ? () => {
        void deps.runs.cancel([run.run_id], "interrupt").catch(() => undefined);
      }
    : undefined;

/** The run's events as server-sent events, from after `lastEventId`, in the modes asked for. */
function streamRun(
  deps: HttpDeps,
  c: Context,
  run: Run,
  options: { lastEventId?: string | undefined; modes?: string[] | undefined; cancelOnDisconnect: boolean },
): Response {
  const keep = modeFilter(options.modes);
  return sseResponse(
    c.req.raw,
    async function* (signal) {
      for await (const event of deps.bus.subscribe(run.run_id, options.lastEventId, signal)) {
        if (event.event === "__final__") return;
        if (keep(event)) yield event;
      }
    },
    {
      keepAliveMs: deps.options.keepAliveMs,
      headers: { "Content-Location": location(run), Location: streamLocation(run) },
      onDisconnect: cancelOnDisconnect(deps, run, options.cancelOnDisconnect),
      runId: run.run_id,
    },
  );
}

/**
 * Waits for the run and answers with its own output (C4). The status is
 * committed at once (everything that can be refused was refused before the
 * run was created) and newlines keep the connection alive meanwhile.
 */
function waitRun(deps: HttpDeps, c: Context, run: Run, cancelOnGone: boolean): Response {
  return jsonWhenReady(c.req.raw, async (signal) => (await deps.runs.waitFinal(run.run_id, signal)).output, {
    keepAliveMs: deps.options.keepAliveMs,
    headers: { "Content-Location": location(run) },
    onDisconnect: cancelOnDisconnect(deps, run, cancelOnGone),
  });
}

/** Runs on a thread: create (plain, streamed, waited for), list, read, delete. */
function threadRunRoutes(app: Hono, { deps, create }: RunRouteKit): void {
  app.post("/threads/:thread_id/runs", async (c) => {
    const run = await create(c, uuidParam(c, "thread_id"));
    c.header("Content-Location", location(run));
    return c.json(wireRun(run));
  });
  app.post("/threads/:thread_id/runs/stream", async (c) => {
    const run = await create(c, uuidParam(c, "thread_id"));
    return streamRun(deps, c, run, { cancelOnDisconnect: run.kwargs.on_disconnect === "cancel" });
  });
  app.post("/threads/:thread_id/runs/wait", async (c) => {
    const run = await create(c, uuidParam(c, "thread_id"));
    return waitRun(deps, c, run, run.kwargs.on_disconnect === "cancel");
  });
  app.get("/threads/:thread_id/runs", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    await deps.threadService.get(threadId);
    const q = parse(s.RunList, { limit: c.req.query("limit"), offset: c.req.query("offset"), status: c.req.query("status") || undefined });
    const found = await deps.queue.list(threadId, q);
    return c.json(found.map(wireRun));
  });
  app.get("/threads/:thread_id/runs/:run_id", async (c) => {
    const run = await deps.runs.get(uuidParam(c, "run_id"), uuidParam(c, "thread_id"));
    return c.json(wireRun(run));
  });
  app.delete("/threads/:thread_id/runs/:run_id", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const runId = uuidParam(c, "run_id");
    if (!(await deps.queue.delete(threadId, runId))) throw notFound("Run", runId);
    return c.json({});
  });
}

/** Joining a run that exists: its output, or the rest of its events. */
function joinRoutes(app: Hono, { deps }: RunRouteKit): void {
  app.get("/threads/:thread_id/runs/:run_id/join", async (c) => {
    const run = await deps.runs.get(uuidParam(c, "run_id"), uuidParam(c, "thread_id"));
    return waitRun(deps, c, run, flag(c.req.query("cancel_on_disconnect")));
  });
  const joinStream = async (c: Context, threadId: string | undefined) => {
    const run = await deps.runs.get(uuidParam(c, "run_id"), threadId);
    if (isFinalRunStatus(run.status) && !(await deps.bus.has(run.run_id))) {
      // Finished, and its events are gone (not resumable, or past retention): nothing left to send.
      return sseResponse(c.req.raw, async function* () {}, { keepAliveMs: deps.options.keepAliveMs });
    }
    const modes = c.req.queries("stream_mode");
    return streamRun(deps, c, run, {
      lastEventId: c.req.header("Last-Event-ID") ?? undefined,
      modes,
      cancelOnDisconnect: flag(c.req.query("cancel_on_disconnect")),
    });
  };
  app.get("/threads/:thread_id/runs/:run_id/stream", (c) => joinStream(c, uuidParam(c, "thread_id")));
  app.get("/runs/:run_id/stream", (c) => joinStream(c, undefined));
}

/** Cancelling one run (optionally waiting for its end), or several. */
function cancelRoutes(app: Hono, { deps }: RunRouteKit): void {
  app.post("/threads/:thread_id/runs/:run_id/cancel", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const runId = uuidParam(c, "run_id");
    const action = parse(s.CancelAction, c.req.query("action"));
    const run = await deps.runs.get(runId, threadId);
    if (run.status !== "pending" && run.status !== "running") {
      throw new BatonError(ErrorCode.conflict, `Run '${runId}' is already ${run.status}; only pending or running runs can be cancelled.`);
    }
    const waitFinal = flag(c.req.query("wait"));
    // Subscribe before cancelling so the final event cannot be missed.
    // Its failure (the client left, the database is away) only ends the wait; handled at once, not after the cancel.
    const final = waitFinal ? deps.runs.waitFinal(runId, c.req.raw.signal).catch(() => undefined) : undefined;
    await deps.runs.cancel([runId], action);
    if (final !== undefined) await final;
    return waitFinal ? c.json({}) : c.body(null, 202);
  });

  app.post("/runs/cancel", async (c) => {
    const q = await body(c, s.RunsCancel);
    const action = parse(s.CancelAction, c.req.query("action"));
    let ids: string[] = q.run_ids ?? [];
    if (q.thread_id !== undefined) {
      const inflight = await deps.queue.inflight(q.thread_id);
      const status = q.status ?? "all";
      const matching = inflight.filter((r) => status === "all" || r.status === status).map((r) => r.run_id);
      ids = q.run_ids !== undefined ? ids.filter((id) => matching.includes(id)) : matching;
    } else if (q.run_ids === undefined) {
      throw new BatonError(ErrorCode.invalid, "Name the runs to cancel: 'run_ids', or 'thread_id' (optionally with 'status').");
    }
    await deps.runs.cancel(ids, action);
    return c.body(null, 204);
  });
}

/** Stateless runs: a temporary thread, deleted after the run unless on_completion is 'keep'. */
function statelessRunRoutes(app: Hono, kit: RunRouteKit): void {
  const { deps, create } = kit;
  app.post("/runs", async (c) => {
    const run = await create(c, null);
    c.header("Content-Location", location(run));
    return c.json(wireRun(run));
  });
  app.post("/runs/stream", async (c) => {
    const run = await create(c, null);
    return streamRun(deps, c, run, { cancelOnDisconnect: run.kwargs.on_disconnect === "cancel" });
  });
  app.post("/runs/wait", async (c) => {
    const run = await create(c, null);
    return waitRun(deps, c, run, run.kwargs.on_disconnect === "cancel");
  });
  app.post("/runs/batch", async (c) => {
    const inputs = await batchInputs(kit, c, await readJson(c));
    return c.json((await createAll(deps, inputs)).map(wireRun));
  });
}

/** Every entry of a batch, checked before any is created: one refused entry creates nothing. */
async function batchInputs(kit: RunRouteKit, c: Context, raw: unknown): Promise<CreateRunInput[]> {
  if (!Array.isArray(raw)) throw new BatonError(ErrorCode.invalid, "Request body must be a JSON array of run payloads.");
  const max = kit.deps.options.limits.maxIdsPerRequest;
  if (raw.length > max) {
    throw new BatonError(ErrorCode.invalid, `${raw.length} runs in one batch, more than the limit of ${max} per request (maxIdsPerRequest / BATON_MAX_IDS_PER_REQUEST); split the batch.`);
  }
  const headers = kit.headersOf(c);
  const inputs: CreateRunInput[] = [];
  for (const [index, item] of raw.entries()) {
    try {
      const input = toCreateInput(parse(s.RunCreate, item), null, { on_completion: "delete" }, headers);
      await kit.deps.runs.assistantOf(input);
      await kit.requireCheckpoint(null, input);
      inputs.push(input);
    } catch (error) {
      throw atIndex(index, error);
    }
  }
  return inputs;
}

/** Creates the runs in order; refused at creation after all (a full queue, a store failure), the runs created so far are taken back. */
async function createAll(deps: HttpDeps, inputs: CreateRunInput[]): Promise<Run[]> {
  const created: Run[] = [];
  try {
    for (const input of inputs) created.push(await deps.runs.create(input));
  } catch (error) {
    await deps.runs.cancel(created.map((run) => run.run_id), "rollback").catch(() => undefined);
    throw atIndex(created.length, error);
  }
  return created;
}
