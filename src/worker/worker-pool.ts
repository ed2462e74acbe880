/**
 * The worker pool: up to `concurrency` runs at once. Each slot claims a run
 * from the queue (the database decides; C1), executes it, and records the
 * outcome fenced by its lease. A lease keeper renews leases and picks up
 * durable cancels; a sweeper requeues runs whose worker died (C3).
 *
 * Modes: RUNNING (claiming when woken, on a poll timer, or when a slot
 * frees), DRAINING (close() called: no new claims, runs may finish within
 * the grace period), STOPPED (remaining runs aborted and handed back).
 */
import { randomUUID } from "node:crypto";
import { context } from "@opentelemetry/api";
import { systemClock, type Clock } from "../core/clock.ts";
import { BatonError, coerceError, ErrorCode } from "../core/errors.ts";
import { executeRun, type ExecutorDeps, type StopReason } from "../core/executor.ts";
import { replaceUnstorable, storableOutcome } from "../core/serialize.ts";
import { startRunSpans } from "../core/tracing.ts";
import { stoppedFailure } from "../core/stopped.ts";
import type { Logger } from "../core/logger.ts";
import { noMetrics, type RunMetrics, type SlotOutcome } from "../core/metrics.ts";
import type { AttemptTimes, FinishResult, LeaseKeeper, RunOutcome, RunQueue } from "../core/ports.ts";
import { threadLogOf, type CancelAction, type Run } from "../core/types.ts";

export interface WorkerPoolOptions {
  /** Runs executed at once by this process. */
  concurrency: number;
  /** How long a claim is valid without renewal. */
  leaseMs: number;
  /** How often held leases are renewed (and durable cancels checked). */
  leaseRenewMs: number;
  /** How often expired leases are swept. */
  sweepIntervalMs: number;
  /** How often the queue is polled when nothing woke the pool (delayed runs). */
  pollIntervalMs: number;
  /** Attempts before a run whose worker keeps dying ends as an error. */
  maxAttempts: number;
  /** A run still going after this long is stopped with status `timeout`. */
  runTimeoutMs: number;
  /** Running runs one user may have at once (C6). */
  maxRunningPerUser: number;
  /** A run still pending this long after it became due is ended as `timeout` by the sweep; 0 or absent: no deadline. */
  maxQueueWaitMs?: number;
  /** How long a finished run's events stay joinable when it asked for `stream_resumable`. */
  resumableRetentionMs: number;
  /**
   * Sweep only this pool's own expired leases (default: every one). For
   * execution threads: their process knows when one of them dies and sweeps
   * for it, so a thread whose loop a graph blocks is never judged dead by a
   * sibling (C9), while a run its own pool let go of (its outcome could not
   * be recorded) is still requeued once its lease expires.
   */
  sweepOwnOnly?: boolean;
}

interface Active {
  run: Run;
  controller: AbortController;
  reason: StopReason | undefined;
  done: Promise<void>;
}

export interface WorkerPoolDeps extends ExecutorDeps {
  queue: RunQueue;
  logger: Logger;
  /** The process's clock (the queue's): a run's time in the queue is measured on it. Default: the system clock. */
  clock?: Clock;
  /** Called after a run's outcome is recorded and its slot freed (webhooks); not awaited. Errors are logged, never thrown. */
  onFinished?: (run: Run, outcome: RunOutcome, times: AttemptTimes) => Promise<void>;
  /** Where claims, slot releases, lease renewals and sweeps are counted (docs/metrics.md); default: nowhere. */
  metrics?: RunMetrics;
}

/**
 * Whether an error recording an outcome is about the data (the database
 * refuses the value itself), not about the database being reachable: a
 * BatonError for invalid input, a Postgres data exception (SQLSTATE class
 * 22, e.g. 22P02 invalid JSON, 22P05 untranslatable character) or program
 * limit (class 54, e.g. a value too large), SQLite's SQLITE_TOOBIG, or a
 * RangeError serializing it (nested too deep, a string too long). Such a
 * failure repeats on every attempt, so it is the run's error, not a crash.
 */
function isDataError(error: unknown): boolean {
  if (error instanceof BatonError) return error.code === ErrorCode.invalid;
  if (error instanceof RangeError) return true;
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code !== "string") return false;
  return /^(22|54)[0-9A-Z]{3}$/.test(code) || code === "SQLITE_TOOBIG";
}

/**
 * Requeues runs whose lease expired, or ends them after their last attempt;
 * logs each and ends the streams of those that end, their end on their
 * thread's stream too (a thread stream client does not wait on them); a
 * resumable run's events are kept `resumableRetentionMs`, as when its
 * worker ends it. Resolves whether any run changed (then someone should claim).
 */
export async function sweepExpired(
  deps: Pick<WorkerPoolDeps, "queue" | "bus" | "logger" | "metrics">,
  options: { maxAttempts: number; resumableRetentionMs: number; owner?: string | undefined },
): Promise<boolean> {
  const { maxAttempts, resumableRetentionMs, owner } = options;
  const { requeued, failed } = await deps.queue.sweep(maxAttempts, owner);
  if (requeued.length > 0 || failed.length > 0) deps.metrics?.swept(requeued.length, failed.length);
  for (const runId of requeued) deps.logger.warn("run:requeued", { run_id: runId, reason: "lease expired" });
  for (const { run_id: runId, thread_log: threadLog, resumable, status, output } of failed) {
    deps.logger.error("run:abandoned", { run_id: runId, reason: "lease expired after the last attempt or a cancel" });
    deps.bus.publish(runId, "__final__", { status, output }, undefined, threadLog);
    deps.bus.end(runId, resumable ? resumableRetentionMs : 0);
  }
  return requeued.length > 0 || failed.length > 0;
}

/**
 * Ends as `timeout` the runs still pending `maxQueueWaitMs` after they
 * became due (one atomic queue operation each), and gives their joiners and
 * waiters a clear ending, as a cancelled pending run's: an `error` event
 * with the reason, the final answer, the end of the stream (kept
 * `resumableRetentionMs` for a resumable run). Resolves whether any run
 * ended (a thread may be free for its next run).
 */
export async function expireOverdue(
  deps: Pick<WorkerPoolDeps, "queue" | "bus" | "logger" | "metrics">,
  maxQueueWaitMs: number,
  resumableRetentionMs: number,
): Promise<boolean> {
  if (!(maxQueueWaitMs > 0)) return false;
  const ended = await deps.queue.expireOverdue(maxQueueWaitMs);
  if (ended.length > 0) deps.metrics?.queueTimeouts(ended.length);
  for (const { run_id: runId, thread_log: threadLog, resumable, failure } of ended) {
    deps.logger.warn("run:queue-timeout", { run_id: runId, max_queue_wait_ms: maxQueueWaitMs });
    deps.bus.publish(runId, "error", failure, undefined, threadLog);
    deps.bus.publish(runId, "__final__", { status: "timeout", output: { __error__: failure } }, undefined, threadLog);
    deps.bus.end(runId, resumable ? resumableRetentionMs : 0);
  }
  return ended.length > 0;
}

export class WorkerPool {
  readonly owner = `worker-${randomUUID()}`;
  readonly #deps: WorkerPoolDeps;
  readonly #options: WorkerPoolOptions;
  readonly #active = new Map<string, Active>();
  /** Claiming: stopped first on close. */
  readonly #claimTimers: NodeJS.Timeout[] = [];
  /** Lease renewal and cancels: kept while running runs drain on close. */
  readonly #runTimers: NodeJS.Timeout[] = [];
  readonly #unsubscribeWork: (() => void)[] = [];
  readonly #unsubscribeCancel: (() => void)[] = [];
  #keeper: LeaseKeeper | undefined;
  #accepting = false;
  #filling = false;
  #fillAgain = false;

  constructor(deps: WorkerPoolDeps, options: WorkerPoolOptions) {
    this.#deps = deps;
    this.#options = options;
  }

  get activeCount(): number {
    return this.#active.size;
  }

  start(): void {
    this.#accepting = true;
    this.#keeper = this.#deps.queue.keepLeases?.({
      owner: this.owner,
      leaseMs: this.#options.leaseMs,
      renewMs: this.#options.leaseRenewMs,
      onError: (message) => this.#deps.logger.warn("worker:lease-renewal-failed", { error: message }),
    });
    this.#unsubscribeWork.push(this.#deps.bus.onWork(() => this.wake()));
    this.#unsubscribeCancel.push(this.#deps.bus.onCancel((runId, action) => this.#cancel(runId, action)));
    const every = (timers: NodeJS.Timeout[], ms: number, task: () => Promise<void>) => {
      const timer = setInterval(() => {
        task().catch((error: unknown) => this.#deps.logger.error("worker:tick-failed", { error: coerceError(error).message }));
      }, ms);
      timer.unref();
      timers.push(timer);
    };
    every(this.#claimTimers, this.#options.pollIntervalMs, async () => this.wake());
    every(this.#claimTimers, this.#options.sweepIntervalMs, () => this.sweep());
    every(this.#runTimers, this.#options.leaseRenewMs, () => this.#renew());
    this.wake();
  }

  /**
   * Requeues runs whose lease expired; any process may call it at any time.
   * This pool's own leases are renewed first, in the same tick: a graph that
   * blocked the event loop past the lease must not make this process judge
   * its own live runs dead when the loop frees (C9).
   */
  async sweep(): Promise<void> {
    await this.#renew();
    const { maxAttempts, resumableRetentionMs } = this.#options;
    if (await sweepExpired(this.#deps, { maxAttempts, resumableRetentionMs, owner: this.#options.sweepOwnOnly ? this.owner : undefined })) this.wake();
    if (await expireOverdue(this.#deps, this.#options.maxQueueWaitMs ?? 0, resumableRetentionMs)) this.wake();
  }

  /** Claims runs until the slots are full or the queue has nothing due. */
  wake(): void {
    if (!this.#accepting) return;
    if (this.#filling) {
      this.#fillAgain = true;
      return;
    }
    this.#filling = true;
    void this.#fill()
      .catch((error: unknown) => this.#deps.logger.error("worker:claim-failed", { error: coerceError(error).message }))
      .finally(() => {
        this.#filling = false;
        if (this.#fillAgain) {
          this.#fillAgain = false;
          this.wake();
        }
      });
  }

  async #fill(): Promise<void> {
    while (this.#accepting && this.#active.size < this.#options.concurrency) {
      const run = await this.#deps.queue.claim(this.owner, this.#options.leaseMs, { maxRunningPerUser: this.#options.maxRunningPerUser });
      if (run === null) return;
      this.#startRun(run);
    }
  }

  #startRun(run: Run): void {
    const previous = this.#active.get(run.run_id);
    if (previous !== undefined) {
      // This process lost the run's lease (its loop or the database was away
      // too long), the run was requeued, and this process claimed it again
      // while the old attempt still runs. Stop the old attempt (its outcome
      // will be fenced) and give the new claim back, so that one attempt at a
      // time executes here.
      this.#deps.logger.warn("run:reclaimed-while-running", { run_id: run.run_id, attempt: run.attempt, running_attempt: previous.run.attempt });
      this.#stop(previous, { kind: "shutdown" });
      void this.#deps.queue
        .release(run.run_id, { owner: this.owner, attempt: run.attempt })
        .catch((error: unknown) => this.#deps.logger.error("run:release-failed", { run_id: run.run_id, error: coerceError(error).message }));
      return;
    }
    const controller = new AbortController();
    const active: Active = { run, controller, reason: undefined, done: Promise.resolve() };
    this.#active.set(run.run_id, active);
    active.done = this.#execute(active).then((settled) => {
      // Unsettled (the database was away when the outcome was due): stop
      // renewing its lease, so it expires and the run is swept and retried.
      if (!settled) this.#keeper?.drop(run.run_id);
      if (this.#active.get(run.run_id) === active) this.#active.delete(run.run_id);
      this.wake();
    });
  }

  /** Executes one attempt; resolves whether the run's record was settled (finished, fenced or handed back). */
  async #execute(active: Active): Promise<boolean> {
    const { run, controller } = active;
    const log = this.#deps.logger;
    const nowMs = (this.#deps.clock ?? systemClock).nowMs();
    const queuedMs = nowMs - Date.parse(run.created_at);
    log.info("run:claimed", { run_id: run.run_id, thread_id: run.thread_id, graph_id: run.graph_id, attempt: run.attempt, queued_ms: queuedMs });
    const metrics = this.#deps.metrics ?? noMetrics;
    metrics.claimed(run.graph_id, run.attempt, Math.max(0, nowMs - run.available_at_ms));
    // run.queued and run.execute, children of the request that created the run (docs/tracing.md).
    const span = startRunSpans(run, Date.now());
    let crash: string | undefined;
    // How the attempt leaves its slot (docs/metrics.md); what is left when it throws.
    let slot: SlotOutcome = "crashed";
    const timeout = setTimeout(() => this.#stop(active, { kind: "timeout" }), this.#options.runTimeoutMs);
    timeout.unref();
    const started = Date.now();
    let settled = false;
    try {
      // The durable side of cancels: one may have landed between claim and now.
      const pending = await this.#deps.queue.cancelAction(run.run_id);
      if (pending !== null) this.#stop(active, { kind: "cancel", action: pending });
      const fence = { owner: this.owner, attempt: run.attempt };
      const result = await context.with(span.context, () => executeRun(run, this.#deps, controller.signal, () => active.reason, fence));
      if (result.handBack) {
        await this.#deps.queue.release(run.run_id, fence);
        slot = "handed_back";
        log.info("run:handed-back", { run_id: run.run_id, thread_id: run.thread_id, attempt: run.attempt });
        return true;
      }
      // What cannot be stored the same on every backend is the run's own error, recorded once (core/serialize.ts).
      const storable = storableOutcome(result.outcome);
      let outcome = storable.outcome;
      if (storable.failure !== undefined) {
        log.warn("run:output-refused", { run_id: run.run_id, error: storable.failure.message });
        this.#deps.bus.publish(run.run_id, "error", storable.failure, run.attempt, threadLogOf(run));
      }
      let finished: FinishResult;
      try {
        finished = await this.#deps.queue.finish(run.run_id, fence, outcome);
      } catch (error) {
        // The database refused the outcome itself (a value it cannot hold):
        // retrying the run would fail the same way, so that is its error.
        // Anything else (the database away) leaves the run to be retried.
        if (!isDataError(error)) throw error;
        const failure = {
          error: "OutcomeNotStored",
          message: `Baton could not store this run's outcome: ${replaceUnstorable(coerceError(error).message)}`,
        };
        log.error("run:output-refused", { run_id: run.run_id, error: failure.message });
        this.#deps.bus.publish(run.run_id, "error", failure, run.attempt, threadLogOf(run));
        outcome = { status: "error", error: failure.message, erase: false, output: { __error__: failure }, thread: { values: null, interrupts: {}, status: "error" } };
        finished = await this.#deps.queue.finish(run.run_id, fence, outcome);
      }
      settled = true;
      slot = finished === "fenced" ? "fenced" : outcome.erase || finished === "erased" ? "rolled_back" : outcome.status;
      if (finished === "fenced") {
        log.warn("run:lease-lost", { run_id: run.run_id, attempt: run.attempt, detail: "outcome not recorded; another attempt owns the run" });
        return settled;
      }
      if (finished === "erased" && !outcome.erase) {
        // The graph ended just as a rollback arrived; the queue erased it anyway.
        const failure = stoppedFailure(run.run_id, "rollback", true);
        this.#deps.bus.publish(run.run_id, "error", failure, run.attempt, threadLogOf(run));
        outcome = { ...outcome, status: "interrupted", erase: true, error: failure.message, output: { __error__: failure } };
      }
      this.#deps.bus.publish(run.run_id, "__final__", { status: outcome.erase ? "rolled_back" : outcome.status, output: outcome.output }, run.attempt, threadLogOf(run));
      this.#deps.bus.end(run.run_id, run.kwargs.stream_resumable ? this.#options.resumableRetentionMs : 0);
      const times: AttemptTimes = { startedAtMs: started, endedAtMs: Date.now() };
      const summary = {
        run_id: run.run_id,
        thread_id: run.thread_id,
        status: outcome.erase ? "rolled_back" : outcome.status,
        attempt: run.attempt,
        run_ms: times.endedAtMs - started,
        ...(outcome.error ? { error: outcome.error } : {}),
      };
      // A graph that failed or ran out of time is worth a look; the server itself is fine.
      if (outcome.status === "error" || outcome.status === "timeout") log.warn("run:finished", summary);
      else log.info("run:finished", summary);
      // The outcome is recorded: the slot is free now. The webhook goes on its
      // own (a slow or silent target must not hold a slot), its errors logged.
      const onFinished = this.#deps.onFinished;
      if (onFinished !== undefined && !outcome.erase) {
        const recorded = outcome;
        void Promise.resolve()
          .then(() => onFinished(run, recorded, times))
          .catch((error: unknown) => log.warn("run:webhook-failed", { run_id: run.run_id, error: coerceError(error).message }));
      }
    } catch (error) {
      crash = coerceError(error).message;
      log.error("run:crashed", { run_id: run.run_id, error: crash });
    } finally {
      span.end(slot, crash);
      clearTimeout(timeout);
      metrics.released(run.graph_id, slot, Date.now() - started);
    }
    return settled;
  }

  #stop(active: Active, reason: StopReason): void {
    if (active.reason !== undefined) return;
    active.reason = reason;
    active.controller.abort(new Error(`run stopped: ${reason.kind}`));
  }

  #cancel(runId: string, action: CancelAction): void {
    const active = this.#active.get(runId);
    if (active !== undefined) this.#stop(active, { kind: "cancel", action });
  }

  async #renew(): Promise<void> {
    const ids = [...this.#active.keys()];
    if (ids.length === 0) return;
    const held = new Set(await this.#deps.queue.extendLeases(this.owner, ids, this.#options.leaseMs));
    let lost = 0;
    for (const id of ids) {
      const active = this.#active.get(id);
      if (active === undefined) continue;
      if (!held.has(id)) {
        lost += 1;
        this.#deps.logger.warn("run:lease-lost", { run_id: id });
        this.#stop(active, { kind: "shutdown" });
        continue;
      }
      const action = await this.#deps.queue.cancelAction(id);
      if (action !== null) this.#stop(active, { kind: "cancel", action });
    }
    this.#deps.metrics?.leases(held.size, lost);
  }

  /**
   * Graceful, then forceful: stop claiming, let running runs finish within
   * `graceMs`, then abort the rest and hand them back to the queue.
   */
  async close(graceMs: number): Promise<void> {
    this.#accepting = false;
    for (const timer of this.#claimTimers) clearInterval(timer);
    for (const off of this.#unsubscribeWork) off();
    const all = () => Promise.all([...this.#active.values()].map((a) => a.done));
    if (this.#active.size > 0 && graceMs > 0) {
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([all(), new Promise((resolve) => (timer = setTimeout(resolve, graceMs)))]);
      clearTimeout(timer);
    }
    for (const active of this.#active.values()) this.#stop(active, { kind: "shutdown" });
    await all();
    // Leases and cancels were served while the runs drained; now nothing runs.
    for (const timer of this.#runTimers) clearInterval(timer);
    for (const off of this.#unsubscribeCancel) off();
    await this.#keeper?.close();
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close(0);
  }
}
