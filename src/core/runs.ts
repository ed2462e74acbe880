/**
 * Runs as the API offers them: create (one, or a batch), read, list,
 * delete, cancel, join. Every action asks the Authorizer first with the
 * official action and value (`threads:create_run`; reads and joins
 * `threads:read`; listing `threads:search`; cancels `threads:update`;
 * deletes `threads:delete`), and a run whose thread is outside the
 * returned filter is not found (404), as on the official server.
 *
 * Multitask strategies are decided in `admission.ts` inside the backend's
 * insert transaction; this service resolves what a request means (its
 * assistant, its checkpoint, its owner, the config the run sees) and
 * signals what the decision implies.
 */
import { randomUUID } from "node:crypto";
import { CRON_PRIORITY, runOwner, runPriority, type QueueLimits } from "./admission.ts";
import { cronRunKwargs, type Cron, type CronFire, type CronRunFields } from "./crons.ts";
import { resolveAssistant } from "./assistants.ts";
import { restricts, type Authorizer } from "./authorizer.ts";
import type { Clock } from "./clock.ts";
import type { RequestContext } from "./context.ts";
import { BatonError, ErrorCode, notFound } from "./errors.ts";
import type { Filter } from "./filter.ts";
import { matches } from "./filter.ts";
import type { GraphRegistry } from "./graphs.ts";
import type { Idempotency } from "./idempotency.ts";
import type { RunMetrics } from "./metrics.ts";
import { RunWaiter, type FinalAnswer } from "./run-wait.ts";
import { stoppedFailure } from "./stopped.ts";
import { currentRunTrace } from "./tracing.ts";
import type { Assistants, EventBus, NewRun, RunCreated, RunQueue, Threads } from "./ports.ts";
import type { ThreadService } from "./threads.ts";
import type { ThreadTtl } from "./thread-ttl.ts";
import { threadStreamEvent } from "./thread-stream.ts";
import { isFinalRunStatus, type Assistant, type CancelAction, type Metadata, type MultitaskStrategy, type Run, type RunEvent, type RunKwargs, type RunStatus, type RunTrace, type Thread, type ThreadEvent } from "./types.ts";

export type { FinalAnswer } from "./run-wait.ts";

/** A run as a request describes it, before anything is decided. */
export interface CreateRunInput {
  /** The thread to run on; null: a new temporary thread. */
  thread_id: string | null;
  assistant_id: string;
  kwargs: Omit<RunKwargs, "temporary">;
  metadata: Metadata;
  multitask_strategy: MultitaskStrategy;
  if_not_exists: "create" | "reject";
  after_seconds: number;
  /** The request's `priority` (a Baton extension), MIN_PRIORITY..MAX_PRIORITY; absent: from metadata (src/core/admission.ts `runPriority`). */
  priority?: number | undefined;
}

/**
 * How long a batch's runs are held while the batch is created: released
 * together at its end, or, when the creating process dies before, due this
 * long after it started.
 */
const BATCH_HOLD_MS = 60_000;

export interface RunServiceDeps {
  queue: RunQueue;
  assistants: Assistants;
  threads: Threads;
  /** Checks the checkpoint a run would start from. */
  threadService: Pick<ThreadService, "requireCheckpoint">;
  bus: EventBus;
  registry: GraphRegistry;
  clock: Clock;
  limits: QueueLimits;
  authorizer: Authorizer;
  /** Idempotency-Key handling for run creation. */
  idempotency: Idempotency;
  /** While the bus is not healthy, how often a wait reads the run's record. Default 1 s. */
  finalPollMs?: number;
  /** While the bus is healthy, how often (by `clock`) a wait reads the record anyway. Default SAFETY_POLL_MS. */
  safetyPollMs?: number;
  /** Where cancels are counted (docs/metrics.md); default: nowhere. */
  metrics?: Pick<RunMetrics, "cancelled">;
  /** langgraph.json's default thread TTL: given to a thread a run creates (docs/threads.md); absent or null: none. */
  defaultThreadTtl?: ThreadTtl | null | undefined;
  /** How long a resumable run's events are kept after a cancel ends it before it started (`eventRetentionMs`). Default 0. */
  resumableRetentionMs?: number;
}

/** Which runs a bulk cancel names: by id, or a thread's in-flight ones (optionally of one status, optionally among ids). */
export interface CancelSelection {
  run_ids?: string[] | undefined;
  thread_id?: string | undefined;
  status?: "pending" | "running" | "all" | undefined;
}

export class RunService {
  readonly #deps: RunServiceDeps;
  readonly #waiter: RunWaiter;

  constructor(deps: RunServiceDeps) {
    this.#deps = deps;
    this.#waiter = new RunWaiter({ queue: deps.queue, bus: deps.bus, clock: deps.clock, finalPollMs: deps.finalPollMs, safetyPollMs: deps.safetyPollMs });
  }

  /**
   * Creates the run a request describes, after everything that can refuse
   * it has been checked; with an Idempotency-Key, once (a retry answers the
   * run the first request created: src/core/idempotency.ts).
   */
  async create(ctx: RequestContext, input: CreateRunInput): Promise<Run> {
    return this.#deps.idempotency.once(
      ctx,
      "run",
      input,
      async (runId) => this.#insert(await this.#prepare(ctx, input, runId)),
      // The key's scope is the caller's; a run since deleted (a temporary thread's) is answered as it was created.
      async (record) => ((await this.#deps.queue.get(record.resource_id)) === null ? (record.response as unknown as Run) : this.get(ctx, record.resource_id)),
      // A request presumed dead may have created its run before it died.
      async (runId) => ((await this.#deps.queue.get(runId)) === null ? null : this.get(ctx, runId)),
    );
  }

  /**
   * Creates several runs (without threads): every entry is checked before
   * any is created, so one refused entry creates nothing; refused at
   * creation after all (a full queue, a store failure), the runs created so
   * far are rolled back. They are created held (due BATCH_HOLD_MS later, or
   * when their own delay ends if that is later) and released together once
   * all exist, so no worker starts one of a batch that is then refused.
   * Errors name the entry.
   */
  async createBatch(ctx: RequestContext, inputs: CreateRunInput[]): Promise<Run[]> {
    if (ctx.idempotencyKey !== undefined) {
      throw new BatonError(ErrorCode.invalid, "Idempotency-Key is not supported on POST /runs/batch: send each run with its own key (POST /runs), or the batch without one.");
    }
    const prepared: NewRun[] = [];
    for (const [index, input] of inputs.entries()) {
      try {
        prepared.push(await this.#prepare(ctx, input, randomUUID()));
      } catch (error) {
        throw atIndex(index, error);
      }
    }
    const created: Run[] = [];
    const clock = this.#deps.clock;
    let heldUntil = clock.nowMs() + BATCH_HOLD_MS;
    const rollBack = () => this.#cancel(created.map((run) => run.run_id), "rollback").catch(() => undefined);
    try {
      for (const run of prepared) {
        // A batch slow to insert (a thousand entries behind other creates) keeps the runs it made held.
        if (clock.nowMs() > heldUntil - BATCH_HOLD_MS / 2) {
          heldUntil = clock.nowMs() + BATCH_HOLD_MS;
          await this.#deps.queue.reschedule(created.map((made) => ({ run_id: made.run_id, available_at_ms: heldUntil })));
        }
        created.push(await this.#insert({ ...run, available_at_ms: Math.max(run.available_at_ms, heldUntil) }, false));
      }
    } catch (error) {
      await rollBack();
      throw atIndex(created.length, error);
    }
    // Due from the release (or later, by their own delay): the time the batch took is not time in the queue.
    const releasedAt = clock.nowMs();
    const due = prepared.map((run) => ({ run_id: run.run_id, available_at_ms: Math.max(run.available_at_ms, releasedAt) }));
    try {
      await this.#deps.queue.reschedule(due);
    } catch (error) {
      await rollBack();
      throw error;
    }
    this.#deps.bus.signalWork();
    return created.map((run, i) => ({ ...run, available_at_ms: due[i]!.available_at_ms }));
  }

  /**
   * Everything decided before the insert: the authorization (whose value,
   * metadata included, may be rewritten), the assistant and its graph, the
   * thread (a thread outside the filter is not found), the checkpoint, the
   * owner, and the config the run sees.
   */
  async #prepare(ctx: RequestContext, input: CreateRunInput, runId: string): Promise<NewRun> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "threads", "create_run", {
      thread_id: input.thread_id,
      assistant_id: input.assistant_id,
      run_id: runId,
      status: "pending",
      metadata: input.metadata,
      prevent_insert_if_inflight: input.multitask_strategy === "reject",
      multitask_strategy: input.multitask_strategy,
      if_not_exists: input.if_not_exists,
      after_seconds: input.after_seconds,
      kwargs: input.kwargs,
    });
    const assistant = await this.#assistantOf(input.assistant_id);
    const thread = input.thread_id === null ? null : await this.#deps.threads.get(input.thread_id);
    if (thread !== null && restricts(filter) && !matches(thread.metadata, filter)) throw notFound("Thread", thread.thread_id);
    await this.#requireStartCheckpoint(input);
    const metadata = value.metadata;
    const temporary = input.thread_id === null;
    return {
      run_id: runId,
      thread_id: input.thread_id ?? randomUUID(),
      assistant_id: assistant.assistant_id,
      graph_id: assistant.graph_id,
      metadata,
      thread_metadata: { graph_id: assistant.graph_id, assistant_id: assistant.assistant_id, ...metadata },
      owner: ownerOf(ctx, metadata, thread),
      priority: runPriority(input.priority, metadata, assistant.metadata),
      dedupe_key: null,
      multitask_strategy: input.multitask_strategy,
      kwargs: { ...input.kwargs, config: withCaller(withHeaders(input.kwargs.config, ctx.headers), ctx), temporary, ...traced() },
      available_at_ms: this.#deps.clock.nowMs() + Math.max(0, input.after_seconds) * 1000,
      if_not_exists: temporary ? "create" : input.if_not_exists,
    };
  }

  /**
   * Creates the run a cron fires for one scheduled time (docs/crons.md),
   * with its fire key, so the time fires once whichever process gets
   * there first (`CronFireTaken` otherwise). No request is behind it: the
   * cron's creation was authorized, and its runs are the cron's user's. A
   * stateless cron's run goes to a new thread, temporary unless the cron
   * keeps them. Claimed at CRON_PRIORITY unless the cron asks otherwise
   * (its `priority`, or `metadata.priority`). With `signal: false` the
   * workers are not signalled: the scheduler signals once for its batch
   * (`signalWork`).
   */
  async createForCron(cron: Cron, fire: CronFire, options: { signal?: boolean } = {}): Promise<Run> {
    const assistant = await this.#assistantOf(cron.assistant_id);
    const payload = cron.payload as CronRunFields & { priority?: number };
    const temporary = cron.thread_id === null && cron.on_run_completed !== "keep";
    const metadata: Metadata = { ...cron.metadata, cron_id: cron.cron_id, cron_scheduled_at: new Date(fire.scheduled_ms).toISOString() };
    const requested = typeof payload.priority === "number" ? payload.priority : typeof metadata.priority === "number" ? undefined : CRON_PRIORITY;
    return this.#insert({
      run_id: randomUUID(),
      thread_id: cron.thread_id ?? randomUUID(),
      assistant_id: assistant.assistant_id,
      graph_id: assistant.graph_id,
      metadata,
      thread_metadata: { graph_id: assistant.graph_id, assistant_id: assistant.assistant_id, ...metadata },
      owner: cron.user_id,
      priority: runPriority(requested, metadata, {}),
      dedupe_key: null,
      multitask_strategy: cron.thread_id === null ? "enqueue" : (payload.multitask_strategy ?? "enqueue"),
      kwargs: { ...cronRunKwargs(payload, temporary ? "delete" : "keep", cron.user_id), temporary },
      available_at_ms: this.#deps.clock.nowMs(),
      if_not_exists: cron.thread_id === null ? "create" : "reject",
      cron_fire: fire,
    }, options.signal ?? true);
  }

  /** Tells the workers there is work (once for a batch of runs created with `signal: false`). */
  signalWork(): void {
    this.#deps.bus.signalWork();
  }

  async #insert(run: NewRun, signal = true): Promise<Run> {
    // A thread the run creates gets the default TTL in the same insert; an existing thread keeps what it has.
    const { run: created, cancelled } = await this.#deps.queue.create({ ...run, thread_ttl: this.#deps.defaultThreadTtl ?? null }, this.#deps.limits);
    this.#signal(cancelled);
    if (signal) this.#deps.bus.signalWork();
    return created;
  }

  /** The run's assistant, refused (404) when it or its graph is unknown. */
  async #assistantOf(assistantId: string): Promise<Assistant> {
    const assistant = await resolveAssistant(this.#deps.assistants, this.#deps.registry.ids, assistantId);
    if (!this.#deps.registry.has(assistant.graph_id)) {
      throw new BatonError(ErrorCode.notFound, `Graph '${assistant.graph_id}' of assistant '${assistant.assistant_id}' is not loaded.`);
    }
    return assistant;
  }

  /**
   * A run from a checkpoint the thread does not have is refused (404):
   * LangGraph would start it from an empty state, replacing the
   * conversation. A run without a thread starts on a new one, which has no
   * checkpoint at all. Checked before the run's transaction: a keep_latest
   * prune in between can still remove the checkpoint (docs/threads.md says
   * why it is not re-checked under the thread's lock).
   */
  async #requireStartCheckpoint(input: CreateRunInput): Promise<void> {
    const configurable = input.kwargs.config.configurable ?? {};
    const text = (value: unknown) => (typeof value === "string" && value !== "" ? value : undefined);
    const ref = {
      checkpoint_id: input.kwargs.checkpoint_id || text(configurable.checkpoint_id),
      checkpoint_ns: input.kwargs.checkpoint?.checkpoint_ns || text(configurable.checkpoint_ns),
    };
    if (input.thread_id !== null) return this.#deps.threadService.requireCheckpoint(input.thread_id, ref);
    if (ref.checkpoint_id !== undefined || ref.checkpoint_ns !== undefined) {
      throw new BatonError(
        ErrorCode.notFound,
        `Checkpoint '${ref.checkpoint_id ?? ref.checkpoint_ns}' not found: a run without a thread starts on a new thread, which has no checkpoints. Run it on its thread (POST /threads/{thread_id}/runs).`,
      );
    }
  }

  /** The run (on `threadId` when given), if the caller may read it. */
  async get(ctx: RequestContext, runId: string, threadId?: string): Promise<Run> {
    const { filter } = await this.#deps.authorizer.authorize(ctx, "threads", "read", { thread_id: threadId });
    return this.#visible(runId, threadId, filter);
  }

  /** The runs of a thread the caller may see, newest first. */
  async list(ctx: RequestContext, threadId: string, query: { limit: number; offset: number; status?: RunStatus | undefined }): Promise<Run[]> {
    const { value, filter } = await this.#deps.authorizer.authorize(ctx, "threads", "search", { thread_id: threadId, status: query.status });
    if ((await this.#deps.threads.get(value.thread_id, { access: filter })) === null) throw notFound("Thread", value.thread_id);
    return this.#deps.queue.list(value.thread_id, { limit: query.limit, offset: query.offset, status: value.status });
  }

  /** Deletes a final run (pending or running ones are refused with a conflict). */
  async delete(ctx: RequestContext, threadId: string, runId: string): Promise<void> {
    const { filter } = await this.#deps.authorizer.authorize(ctx, "threads", "delete", { run_id: runId, thread_id: threadId });
    await this.#visible(runId, threadId, filter);
    if (!(await this.#deps.queue.delete(threadId, runId))) throw notFound("Run", runId);
  }

  /**
   * Cancels one pending or running run (a final one is a conflict); with
   * `wait`, answers once it has ended (or the signal aborted).
   */
  async cancelOne(ctx: RequestContext, threadId: string, runId: string, action: CancelAction, wait?: AbortSignal): Promise<void> {
    const { filter } = await this.#deps.authorizer.authorize(ctx, "threads", "update", {
      thread_id: threadId,
      action,
      metadata: { run_ids: [runId], status: "pending" },
    });
    const run = await this.#visible(runId, threadId, filter);
    if (isFinalRunStatus(run.status)) {
      throw new BatonError(ErrorCode.conflict, `Run '${runId}' is already ${run.status}; only pending or running runs can be cancelled.`);
    }
    // Watch before cancelling so the final event cannot be missed; its
    // failure (the client left, the database is away) only ends the wait.
    const final = wait !== undefined ? this.#waiter.waitFinal(runId, wait).catch(() => undefined) : undefined;
    await this.#cancel([runId], action);
    if (final !== undefined) await final;
  }

  /** Cancels the selected runs the caller may see; unknown and final ones are skipped. */
  async cancelMany(ctx: RequestContext, selection: CancelSelection, action: CancelAction): Promise<void> {
    if (selection.thread_id === undefined && selection.run_ids === undefined) {
      throw new BatonError(ErrorCode.invalid, "Name the runs to cancel: 'run_ids', or 'thread_id' (optionally with 'status').");
    }
    const { filter } = await this.#deps.authorizer.authorize(ctx, "threads", "update", {
      thread_id: selection.thread_id,
      action,
      metadata: { run_ids: selection.run_ids, status: selection.status ?? "all" },
    });
    let ids = selection.run_ids ?? [];
    if (selection.thread_id !== undefined) {
      if ((await this.#deps.threads.get(selection.thread_id, { access: filter })) === null) throw notFound("Thread", selection.thread_id);
      const status = selection.status ?? "all";
      const matching = (await this.#deps.queue.inflight(selection.thread_id)).filter((r) => status === "all" || r.status === status).map((r) => r.run_id);
      ids = selection.run_ids !== undefined ? ids.filter((id) => matching.includes(id)) : matching;
    } else if (restricts(filter)) {
      const visible: string[] = [];
      for (const id of ids) if ((await this.#visibleOrNull(id, undefined, filter)) !== null) visible.push(id);
      ids = visible;
    }
    await this.#cancel(ids, action);
  }

  /**
   * Interrupts a run whose client went away (`on_disconnect: cancel`, or a
   * join with `cancel_on_disconnect`): that client created or joined it, so
   * its rights were checked then.
   */
  abandon(run: Run): void {
    void this.#cancel([run.run_id], "interrupt").catch(() => undefined);
  }

  /** The run's events after `afterId`, then the ones still to come (for a run the caller created or read). */
  events(run: Run, afterId: string | undefined, signal: AbortSignal): AsyncIterable<RunEvent> {
    return this.#deps.bus.subscribe(run.run_id, afterId, signal);
  }

  /**
   * A thread's stream (src/core/thread-stream.ts), once the caller may read
   * the thread (`threads:read`; a thread outside the filter, or none, is
   * 404): every run's events after `afterId` (undefined: from now; "-": the
   * oldest kept), then the ones to come, until the signal aborts.
   */
  async threadStream(ctx: RequestContext, threadId: string): Promise<(afterId: string | undefined, signal: AbortSignal) => AsyncIterable<RunEvent>> {
    const log = await this.threadLog(ctx, threadId, { allowMissing: false });
    return async function* (afterId, signal) {
      for await (const entry of log(afterId, signal)) {
        const event = threadStreamEvent(entry);
        if (event !== undefined) yield event;
      }
    };
  }

  /**
   * The thread's log (src/core/ports.ts `subscribeThread`), once the caller
   * may read the thread (`threads:read`): a thread outside the filter is
   * 404; so is a thread that does not exist, unless `allowMissing` (a
   * protocol v2 client opens its stream before its first run creates the
   * thread): then the log is read once the thread exists and is the
   * caller's, and ends at once if it turns out to be someone else's.
   */
  async threadLog(ctx: RequestContext, threadId: string, options: { allowMissing: boolean }): Promise<(afterId: string | undefined, signal: AbortSignal) => AsyncIterable<ThreadEvent>> {
    const { filter } = await this.#deps.authorizer.authorize(ctx, "threads", "read", { thread_id: threadId });
    const threads = this.#deps.threads;
    const visible = async () => (await threads.get(threadId, { access: filter })) !== null;
    let checked = await visible();
    if (!checked && (!options.allowMissing || (await threads.get(threadId)) !== null)) throw notFound("Thread", threadId);
    const bus = this.#deps.bus;
    return async function* (afterId, signal) {
      for await (const entry of bus.subscribeThread(threadId, afterId, signal)) {
        if (!checked && !(checked = await visible())) return;
        yield entry;
      }
    };
  }

  /** The id of the newest entry of the thread's log, for a caller that was allowed to read the thread (threadLog). */
  threadLogHead(threadId: string): Promise<string | undefined> {
    return this.#deps.bus.threadLogHead(threadId);
  }

  /** The newest runs of a thread (at most `limit`), newest first, for a caller that was allowed to read the thread. */
  recentRuns(threadId: string, limit: number): Promise<Run[]> {
    return this.#deps.queue.list(threadId, { limit, offset: 0 });
  }

  /** Whether the run's events can still be joined (live, or retained after its end). */
  hasEvents(run: Run): Promise<boolean> {
    return this.#deps.bus.has(run.run_id);
  }

  /** The run's own answer (C4) once it is final or gone (src/core/run-wait.ts); rejects when the signal aborts. */
  waitFinal(run: Run, signal: AbortSignal): Promise<FinalAnswer> {
    return this.#waiter.waitFinal(run.run_id, signal);
  }

  async #visible(runId: string, threadId: string | undefined, filter: Filter | undefined): Promise<Run> {
    const run = await this.#visibleOrNull(runId, threadId, filter);
    if (run === null) throw notFound("Run", runId);
    return run;
  }

  /** The run, unless it is not on `threadId` or its thread is outside the filter. */
  async #visibleOrNull(runId: string, threadId: string | undefined, filter: Filter | undefined): Promise<Run | null> {
    const run = await this.#deps.queue.get(runId, threadId);
    if (run === null || !restricts(filter)) return run;
    return (await this.#deps.threads.get(run.thread_id, { access: filter })) === null ? null : run;
  }

  async #cancel(runIds: string[], action: CancelAction): Promise<void> {
    const done = await this.#deps.queue.cancel(runIds, action);
    this.#signal(done.map((d) => ({ ...d, action })));
    this.#deps.bus.signalWork();
  }

  #signal(cancelled: RunCreated["cancelled"]): void {
    for (const c of cancelled) {
      this.#deps.metrics?.cancelled(c.action, c.was_running);
      if (c.was_running) this.#deps.bus.signalCancel(c.run_id, c.action);
      else this.#endCancelledPending(c);
    }
  }

  /** A pending run stopped before it started: its joiners get a clear ending, and its thread's stream its end. */
  #endCancelledPending({ run_id: runId, action, thread_log: threadLog, resumable }: RunCreated["cancelled"][number]): void {
    const failure = stoppedFailure(runId, action, false);
    this.#deps.bus.publish(runId, "error", failure, undefined, threadLog);
    this.#deps.bus.publish(runId, "__final__", { status: action === "rollback" ? "rolled_back" : "interrupted", output: { __error__: failure } }, undefined, threadLog);
    this.#deps.bus.end(runId, resumable ? (this.#deps.resumableRetentionMs ?? 0) : 0);
  }
}

/**
 * Whose run it is (per-user caps and fair selection, C6,
 * docs/scheduling.md): the authenticated caller when there is one, so a
 * client cannot count its runs against someone else; otherwise the user the
 * `userHeader` request header names; otherwise `metadata.owner` of the run,
 * else of its thread; else nobody (null), the one shared anonymous user.
 */
export function ownerOf(ctx: RequestContext, metadata: Metadata, thread: Thread | null): string | null {
  if (ctx.principal !== null && ctx.principal.identity !== "") return ctx.principal.identity;
  if (ctx.user !== undefined && ctx.user !== "") return ctx.user;
  return runOwner(metadata, thread?.metadata ?? {});
}

/**
 * The run's config: the request's, with the request headers the project
 * lets through in `configurable` (they win over the body's values, as on
 * the official server), so a graph can read them.
 */
function withHeaders(config: RunKwargs["config"], headers: Readonly<Record<string, string>>): RunKwargs["config"] {
  if (Object.keys(headers).length === 0) return config;
  return { ...config, configurable: { ...config.configurable, ...headers } };
}

/**
 * The authenticated caller, where a graph reads it as on the official
 * server: `langgraph_auth_user` (the user `authenticate` answered),
 * `langgraph_auth_user_id` (its identity) and `langgraph_auth_permissions`.
 * They win over the request's own values, so a client cannot pose as
 * another user to the graph.
 */
function withCaller(config: RunKwargs["config"], ctx: RequestContext): RunKwargs["config"] {
  const user = ctx.principal;
  if (user === null) return config;
  return {
    ...config,
    configurable: { ...config.configurable, langgraph_auth_user: user, langgraph_auth_user_id: user.identity, langgraph_auth_permissions: user.permissions },
  };
}

/** An error about one entry of a batch, naming the entry (its status kept). */
export function atIndex(index: number, error: unknown): unknown {
  if (!(error instanceof BatonError)) return error;
  return new BatonError(error.code, `Run ${index}: ${error.message}`, {
    cause: error,
    ...(error.retryAfterSeconds !== undefined ? { retryAfterSeconds: error.retryAfterSeconds } : {}),
  });
}

/** The request's trace context, to travel with the run through the queue; nothing when tracing is off. */
function traced(): { trace?: RunTrace } {
  const trace = currentRunTrace();
  return trace === null ? {} : { trace };
}
