import type { Context } from "hono";
import { Hono } from "hono";
import { BatonError, ErrorCode } from "../../core/errors.ts";
import { atIndex, type CreateRunInput } from "../../core/runs.ts";
import { isFinalRunStatus, type Run, type RunEvent, type StreamMode } from "../../core/types.ts";
import { ctxOf, type BatonEnv } from "../context.ts";
import type { HttpDeps } from "../deps.ts";
import { wireRun } from "../records.ts";
import * as s from "../schemas.ts";
import { jsonWhenReady, sseResponse } from "../sse.ts";
import { body, flag, parse, readJson, uuidParam } from "../validate.ts";

type C = Context<BatonEnv>;

/** Fields of the contract Baton does not implement: refused, never ignored. */
function refuseUnsupported(input: s.RunCreate): void {
  const refuse = (field: string, why: string) => {
    throw new BatonError(ErrorCode.unsupported, `Field '${field}' is not supported by Baton: ${why}`);
  };
  if (input.feedback_keys && input.feedback_keys.length > 0) refuse("feedback_keys", "LangSmith feedback is not wired in.");
  if (input.langsmith_tracer !== undefined && input.langsmith_tracer !== null) refuse("langsmith_tracer", "LangSmith tracing is not wired in.");
  if (input.stream_mode_options !== undefined && input.stream_mode_options !== null) refuse("stream_mode_options", "per-mode options are not implemented.");
}


/** What a run request's body means (RunService adds the request headers to its config). */
export function toCreateInput(input: s.RunCreate, threadId: string | null, defaults: { on_completion: "delete" | "keep" }): CreateRunInput {
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
    priority: input.priority,
    kwargs: {
      // A command wins over the input, as on the official servers: Agent
      // Chat UI and useStream().submit({}, {command}) send both.
      input: input.command ? null : (input.input ?? null),
      command: input.command ?? null,
      config: input.config ?? {},
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


/** What the run routes share: the deps, and how a request becomes a run. */
interface RunRouteKit {
  deps: HttpDeps;
  /** Creates the run a request's body describes, on the thread or (null) on a new temporary one. */
  create: (c: C, threadId: string | null) => Promise<Run>;
}

export function runRoutes(deps: HttpDeps): Hono<BatonEnv> {
  const app = new Hono<BatonEnv>();
  const kit: RunRouteKit = {
    deps,
    create: async (c, threadId) => {
      const input = toCreateInput(parse(s.RunCreate, await readJson(c)), threadId, { on_completion: threadId === null ? "delete" : "keep" });
      return deps.runs.create(ctxOf(c), input);
    },
  };
  threadRunRoutes(app, kit);
  joinRoutes(app, kit);
  cancelRoutes(app, kit);
  statelessRunRoutes(app, kit);
  return app;
}

// Content-Location names the run (the SDK's onRunCreated reads it);
// Location names its stream (the SDK reconnects there with Last-Event-ID).
const location = (run: Run) => (run.kwargs.temporary ? `/runs/${run.run_id}` : `/threads/${run.thread_id}/runs/${run.run_id}`);
const streamLocation = (run: Run) => `/threads/${run.thread_id}/runs/${run.run_id}/stream`;

/** Interrupts the run when its client goes away, if asked to. */
const cancelOnDisconnect = (deps: HttpDeps, run: Run, enabled: boolean) => (enabled ? () => deps.runs.abandon(run) : undefined);

/** The run's events as server-sent events, from after `lastEventId`, in the modes asked for. */
function streamRun(
  deps: HttpDeps,
  c: C,
  run: Run,
  options: { lastEventId?: string | undefined; modes?: string[] | undefined; cancelOnDisconnect: boolean },
): Response {
  const keep = modeFilter(options.modes);
  return sseResponse(
    c.req.raw,
    async function* (signal) {
      for await (const event of deps.runs.events(run, options.lastEventId, signal)) {
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
function waitRun(deps: HttpDeps, c: C, run: Run, cancelOnGone: boolean): Response {
  return jsonWhenReady(c.req.raw, async (signal) => (await deps.runs.waitFinal(run, signal)).output, {
    keepAliveMs: deps.options.keepAliveMs,
    headers: { "Content-Location": location(run) },
    onDisconnect: cancelOnDisconnect(deps, run, cancelOnGone),
  });
}

/** Runs on a thread: create (plain, streamed, waited for), list, read, delete. */
function threadRunRoutes(app: Hono<BatonEnv>, { deps, create }: RunRouteKit): void {
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
    const q = parse(s.RunList, { limit: c.req.query("limit"), offset: c.req.query("offset"), status: c.req.query("status") || undefined });
    return c.json((await deps.runs.list(ctxOf(c), threadId, q)).map(wireRun));
  });
  app.get("/threads/:thread_id/runs/:run_id", async (c) => {
    const run = await deps.runs.get(ctxOf(c), uuidParam(c, "run_id"), uuidParam(c, "thread_id"));
    return c.json(wireRun(run));
  });
  app.delete("/threads/:thread_id/runs/:run_id", async (c) => {
    await deps.runs.delete(ctxOf(c), uuidParam(c, "thread_id"), uuidParam(c, "run_id"));
    return c.json({});
  });
}

/** Joining a run that exists: its output, or the rest of its events. */
function joinRoutes(app: Hono<BatonEnv>, { deps }: RunRouteKit): void {
  app.get("/threads/:thread_id/runs/:run_id/join", async (c) => {
    const run = await deps.runs.get(ctxOf(c), uuidParam(c, "run_id"), uuidParam(c, "thread_id"));
    return waitRun(deps, c, run, flag(c.req.query("cancel_on_disconnect")));
  });
  const joinStream = async (c: C, threadId: string | undefined) => {
    const run = await deps.runs.get(ctxOf(c), uuidParam(c, "run_id"), threadId);
    if (isFinalRunStatus(run.status) && !(await deps.runs.hasEvents(run))) {
      // Finished, and its events are gone (not resumable, or past retention): nothing left to send.
      return sseResponse(c.req.raw, async function* () {}, { keepAliveMs: deps.options.keepAliveMs });
    }
    return streamRun(deps, c, run, {
      lastEventId: c.req.header("Last-Event-ID") ?? undefined,
      modes: c.req.queries("stream_mode"),
      cancelOnDisconnect: flag(c.req.query("cancel_on_disconnect")),
    });
  };
  app.get("/threads/:thread_id/runs/:run_id/stream", (c) => joinStream(c, uuidParam(c, "thread_id")));
  app.get("/runs/:run_id/stream", (c) => joinStream(c, undefined));
}

/** Cancelling one run (optionally waiting for its end), or several. */
function cancelRoutes(app: Hono<BatonEnv>, { deps }: RunRouteKit): void {
  app.post("/threads/:thread_id/runs/:run_id/cancel", async (c) => {
    const threadId = uuidParam(c, "thread_id");
    const runId = uuidParam(c, "run_id");
    const action = parse(s.CancelAction, c.req.query("action"));
    const wait = flag(c.req.query("wait"));
    await deps.runs.cancelOne(ctxOf(c), threadId, runId, action, wait ? c.req.raw.signal : undefined);
    return wait ? c.json({}) : c.body(null, 202);
  });
  app.post("/runs/cancel", async (c) => {
    const selection = await body(c, s.RunsCancel);
    await deps.runs.cancelMany(ctxOf(c), selection, parse(s.CancelAction, c.req.query("action")));
    return c.body(null, 204);
  });
}

/** Stateless runs: a temporary thread, deleted after the run unless on_completion is 'keep'. */
function statelessRunRoutes(app: Hono<BatonEnv>, { deps, create }: RunRouteKit): void {
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
    const runs = await deps.runs.createBatch(ctxOf(c), batchInputs(deps, await readJson(c)));
    return c.json(runs.map(wireRun));
  });
}

/** A batch's entries, each parsed (a refused entry is named by its index); RunService checks the rest before creating any. */
function batchInputs(deps: HttpDeps, raw: unknown): CreateRunInput[] {
  if (!Array.isArray(raw)) throw new BatonError(ErrorCode.invalid, "Request body must be a JSON array of run payloads.");
  const max = deps.options.limits.maxIdsPerRequest;
  if (raw.length > max) {
    throw new BatonError(ErrorCode.invalid, `${raw.length} runs in one batch, more than the limit of ${max} per request (maxIdsPerRequest / BATON_MAX_IDS_PER_REQUEST); split the batch.`);
  }
  return raw.map((item: unknown, index) => {
    try {
      return toCreateInput(parse(s.RunCreate, item), null, { on_completion: "delete" });
    } catch (error) {
      throw atIndex(index, error);
    }
  });
}
