/**
 * The run queue on Postgres: the runs table is the queue, shared by every
 * API and worker process.
 *
 * - Creating a run locks its thread row (`FOR UPDATE`), so the multitask
 *   decision and the insert are one step per thread across processes (C2).
 * - The claim is one statement: it picks the oldest due run whose thread has
 *   no running run and no state-update lock, locking the run and its thread
 *   with `SKIP LOCKED` so concurrent claimers pass each other by. Two claimers
 *   that race past the NOT EXISTS check on one thread are stopped by the
 *   partial unique index; the loser retries (C1).
 * - Every change a worker makes is fenced by lease owner and attempt (C3).
 * - Lease, claim and schedule times come from the process's clock; once
 *   `guardClock` is on, every sweep first compares that clock with the
 *   database's, and while they differ by more than the limit this process
 *   neither sweeps nor claims (docs/operations.md, "Clocks").
 */
import type pg from "pg";
import { checkQueueRoom, decideAdmission, queueTimeoutFailure, type QueueLimits } from "../../core/admission.ts";
import { dropsTemporaryThread, settledStatus, type ThreadFacts } from "../../core/settle.ts";
import type { Clock, ClockSample } from "../../core/clock.ts";
import { beyondLimit, describeSkew, isoFromMs } from "../../core/clock.ts";
import { BatonError, ErrorCode, notFound } from "../../core/errors.ts";
import type { Logger } from "../../core/logger.ts";
import { decideSweep, stoppedFailure, sweptEnd } from "../../core/stopped.ts";
import { mergeThreadConfig } from "../../core/thread-config.ts";
import type { AbandonedRun, CancelledRun, ClaimPolicy, Fence, FinishResult, LeaseKeeper, NewRun, OverdueRun, Page, QueueStats, RunCreated, RunOutcome, RunQueue } from "../../core/ports.ts";
import { streamEnding, type CancelAction, type Run, type RunStatus, type RunnableConfigRecord, type ThreadStatus } from "../../core/types.ts";
import { isConnectionError, pgCode, retryUnavailable, sampleClock, transaction, UNIQUE_VIOLATION, type Queryable } from "./database.ts";
import { startThreadLeaseKeeper } from "./lease-keeper.ts";
import { deleteThreadRows, jsonb, toRun, type RunRow } from "./rows.ts";
import { claimCronFire } from "./crons.ts";

/**
 * The claim is the function `baton_claim`, one statement and one round trip.
 * It returns at once when no pending run is due (migration 0010); otherwise
 * `baton_claim_search` (migration 0006, after 0004) finds the candidates.
 * `users`: the users with pending runs
 * (the anonymous user, owner NULL, is one user), by a loose index scan;
 * `head`: for each user not at the cap, its first 16 claimable runs by
 * priority then FIFO (only the oldest pending run of a thread is
 * claimable, and none of a thread with a running run). Then the first of
 * them by priority, then the user's running count (fewer first), then FIFO,
 * whose run and thread rows are not locked by another claimer or a run
 * being created on that thread, is locked and taken. For a run with an
 * owner the function then recounts that user's running runs under a
 * per-user lock and raises OVER_CAP (the claim rolled back) when another
 * claimer took the last slot first (C6).
 */
const CLAIM = "SELECT * FROM baton_claim($1, $2, $3, $4, $5)";
const OVER_CAP = "BT001";

export class PostgresRunQueue implements RunQueue {
  readonly #pool: pg.Pool;
  readonly #clock: Clock;

  readonly #url: string;
  #lastClaimStampMs = 0;
  /** Claims cut off by a lost connection: they may have leased a run to this worker. */
  readonly #doubtfulClaims: { worker: string; stamp: string }[] = [];
  /** Set by `guardClock`: the clock is compared with the database's at every sweep. */
  #clockGuard: { limitMs: number; logger: Logger } | undefined;
  /** The last sweep's sample, while it showed the clock beyond the limit: no sweeping, no claiming. */
  #skewed: ClockSample | undefined;

  constructor(pool: pg.Pool, clock: Clock, url: string) {
    this.#pool = pool;
    this.#clock = clock;
    this.#url = url;
  }

  keepLeases(options: { owner: string; leaseMs: number; renewMs: number; onError: (message: string) => void }): LeaseKeeper {
    return startThreadLeaseKeeper({ url: this.#url, clock: this.#clock, ...options });
  }

  /**
   * From now on, every sweep first compares this process's clock with the
   * database's. While they differ by more than `limitMs` (beyond what the
   * round trip explains) this process judges no lease and claims no run,
   * since either would use the wrong time (`clock:skew`, warn, at each
   * sweep); the runs it holds are still renewed and finished. When the
   * clock is back within the limit it resumes (`clock:skew-cleared`).
   */
  guardClock(limitMs: number, logger: Logger): void {
    this.#clockGuard = { limitMs, logger };
  }

  /** Compares this queue's clock with the database's (the best of `samples` round trips). */
  async sampleClock(samples: number): Promise<ClockSample> {
    return sampleClock(this.#pool, this.#clock, samples);
  }

  /** Samples the clock against the database's; true when it is beyond the limit (then logged). */
  async #clockSkewed(): Promise<boolean> {
    const guard = this.#clockGuard;
    if (guard === undefined) return false;
    const sample = await sampleClock(this.#pool, this.#clock);
    if (beyondLimit(sample, guard.limitMs)) {
      this.#skewed = sample;
      guard.logger.warn("clock:skew", {
        offset_ms: sample.offsetMs,
        uncertainty_ms: sample.uncertaintyMs,
        limit_ms: guard.limitMs,
        detail: `this process's clock is ${describeSkew(sample, "the database's")}; it claims no run and judges no lease until the clocks agree (synchronize them, e.g. with NTP)`,
      });
      return true;
    }
    if (this.#skewed !== undefined) {
      this.#skewed = undefined;
      guard.logger.info("clock:skew-cleared", { offset_ms: sample.offsetMs, limit_ms: guard.limitMs });
    }
    return false;
  }

  async #inflight(db: Queryable, threadId: string): Promise<Run[]> {
    const { rows } = await db.query<RunRow>(
      "SELECT * FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running') ORDER BY available_at_ms, seq",
      [threadId],
    );
    return rows.map(toRun);
  }

  async create(input: NewRun, limits?: QueueLimits): Promise<RunCreated> {
    return transaction(this.#pool, async (db) => {
      const now = this.#clock.nowMs();
      const iso = isoFromMs(now);
      const locked = await db.query<{ config: RunnableConfigRecord }>(
        "SELECT config FROM threads WHERE thread_id = $1 FOR UPDATE",
        [input.thread_id],
      );
      let threadConfig: RunnableConfigRecord = {};
      if (locked.rows[0] === undefined) {
        if (input.if_not_exists === "reject") throw notFound("Thread", input.thread_id);
        const inserted = await db.query(
          `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, ttl_strategy, ttl_minutes)
           VALUES ($1, $2, $2, $3::jsonb, 'busy', NULL, '{}', '{}', $4, $5) ON CONFLICT (thread_id) DO NOTHING`,
          [input.thread_id, iso, jsonb(input.thread_metadata), input.thread_ttl?.strategy ?? null, input.thread_ttl?.minutes ?? null],
        );
        // Another process created it meanwhile: lock and use theirs.
        if (inserted.rowCount === 0) {
          const again = await db.query<{ config: RunnableConfigRecord }>(
            "SELECT config FROM threads WHERE thread_id = $1 FOR UPDATE",
            [input.thread_id],
          );
          threadConfig = again.rows[0]?.config ?? {};
        }
      } else {
        threadConfig = locked.rows[0].config;
        // The official server records on the thread which graph last ran on it.
        await db.query("UPDATE threads SET metadata = metadata || $2::jsonb WHERE thread_id = $1", [
          input.thread_id,
          jsonb({ graph_id: input.graph_id, assistant_id: input.assistant_id }),
        ]);
      }
      const config = mergeThreadConfig(threadConfig, input.kwargs.config);
      await db.query("UPDATE threads SET config = $2::jsonb WHERE thread_id = $1", [input.thread_id, jsonb(config.thread)]);
      if (input.cron_fire !== undefined) await claimCronFire(db, input.cron_fire, input.run_id, now);
      const owner = input.owner;
      if (limits !== undefined) {
        // One create per user at a time, so the per-user count is exact
        // across processes (the global one may overshoot by the creates in flight).
        // The anonymous user (owner NULL) is one user too, but takes no lock:
        // it would make every anonymous create wait for the others, so its
        // count, like the global one, may overshoot by the creates in flight.
        if (owner !== null) await db.query("SELECT pg_advisory_xact_lock(hashtext('baton-owner:' || $1))", [owner]);
        const { rows } = await db.query<{ total: number; mine: number }>(
          `SELECT COUNT(*)::int AS total, COUNT(*) FILTER (WHERE owner IS NOT DISTINCT FROM $1)::int AS mine
             FROM runs WHERE status = 'pending'`,
          [owner],
        );
        checkQueueRoom(limits, owner, rows[0]!.mine, rows[0]!.total);
      }
      const order = decideAdmission(input.multitask_strategy, await this.#inflight(db, input.thread_id));
      const cancelled: RunCreated["cancelled"] = [];
      for (const { run, action } of order.cancel) cancelled.push(await this.#cancelOne(db, run, action, iso));
      const { rows } = await db.query<RunRow>(
        `INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, kwargs,
                           available_at_ms, owner, priority, dedupe_key, created_at, updated_at)
         VALUES ($1, $2, $3, $4, 'pending', $5::jsonb, $6, $7::jsonb, $8, $9, $10, $11, $12, $12) RETURNING *`,
        [
          input.run_id,
          input.thread_id,
          input.assistant_id,
          input.graph_id,
          jsonb(input.metadata),
          input.multitask_strategy,
          jsonb({ ...input.kwargs, config: config.run }),
          Math.max(now, input.available_at_ms),
          owner,
          input.priority,
          input.dedupe_key,
          iso,
        ],
      );
      await db.query("UPDATE threads SET status = 'busy', updated_at = $2 WHERE thread_id = $1", [input.thread_id, iso]);
      return { run: toRun(rows[0]!), cancelled };
    });
  }

  async get(runId: string, threadId?: string): Promise<Run | null> {
    const { rows } = await this.#pool.query<RunRow>("SELECT * FROM runs WHERE run_id = $1", [runId]);
    const row = rows[0];
    if (row === undefined || (threadId !== undefined && row.thread_id !== threadId)) return null;
    return toRun(row);
  }

  async list(threadId: string, query: Page & { status?: RunStatus | undefined }): Promise<Run[]> {
    const args: unknown[] = [threadId];
    let sql = "SELECT * FROM runs WHERE thread_id = $1";
    if (query.status !== undefined) {
      args.push(query.status);
      sql += ` AND status = $${args.length}`;
    }
    args.push(query.limit, query.offset);
    sql += ` ORDER BY seq DESC LIMIT $${args.length - 1} OFFSET $${args.length}`;
    return (await this.#pool.query<RunRow>(sql, args)).rows.map(toRun);
  }

  async delete(threadId: string, runId: string): Promise<boolean> {
    return transaction(this.#pool, async (db) => {
      const row = (await db.query<RunRow>("SELECT * FROM runs WHERE run_id = $1 FOR UPDATE", [runId])).rows[0];
      if (row === undefined || row.thread_id !== threadId) return false;
      if (row.status === "pending" || row.status === "running") {
        throw new BatonError(
          ErrorCode.conflict,
          `Run '${runId}' is ${row.status}; cancel it first (POST /threads/${threadId}/runs/${runId}/cancel), then delete it.`,
        );
      }
      await db.query("DELETE FROM runs WHERE run_id = $1", [runId]);
      return true;
    });
  }

  async cancel(runIds: string[], action: CancelAction): Promise<CancelledRun[]> {
    const done: CancelledRun[] = [];
    // One transaction per run, each under its thread's lock: a bulk cancel
    // never holds many thread locks at once.
    for (const runId of runIds) {
      const result = await transaction(this.#pool, async (db) => {
        const found = (await db.query<{ thread_id: string }>("SELECT thread_id FROM runs WHERE run_id = $1", [runId])).rows[0];
        if (found === undefined) return null;
        await db.query("SELECT 1 FROM threads WHERE thread_id = $1 FOR UPDATE", [found.thread_id]);
        const row = (await db.query<RunRow>("SELECT * FROM runs WHERE run_id = $1", [runId])).rows[0];
        if (row === undefined || (row.status !== "pending" && row.status !== "running")) return null;
        return this.#cancelOne(db, toRun(row), action, isoFromMs(this.#clock.nowMs()));
      });
      if (result !== null) {
        const { action: _action, ...cancelled } = result;
        done.push(cancelled);
      }
    }
    return done;
  }

  /** Inside a transaction holding the thread's lock: stop one in-flight run. */
  async #cancelOne(db: Queryable, run: Run, action: CancelAction, iso: string): Promise<RunCreated["cancelled"][number]> {
    if (run.status === "running") {
      // The worker executing it sees the flag (and the bus signal), stops the
      // graph and finishes the run itself, fenced by its lease. updated_at
      // stays the claim's stamp: a claim whose answer was lost is found by it
      // and handed back (#settleDoubtfulClaims), flag and all.
      await db.query("UPDATE runs SET cancel_action = $2 WHERE run_id = $1", [run.run_id, action]);
      return { run_id: run.run_id, action, was_running: true, ...streamEnding(run) };
    }
    if (action === "rollback") {
      await db.query("DELETE FROM runs WHERE run_id = $1", [run.run_id]);
    } else {
      // Its answer is recorded with it: a `wait` that looks later reads it here.
      await db.query("UPDATE runs SET status = 'interrupted', cancel_action = $2, output = $4::jsonb, updated_at = $3 WHERE run_id = $1", [
        run.run_id,
        action,
        iso,
        jsonb({ __error__: stoppedFailure(run.run_id, action, false) }),
      ]);
    }
    await this.#settleThread(db, run.thread_id, iso, null);
    return { run_id: run.run_id, action, was_running: false, ...streamEnding(run) };
  }

  /** Inside a transaction: stores the status the thread settles to after a run ended or stopped (src/core/settle.ts). */
  async #settleThread(db: Queryable, threadId: string, iso: string, statusWhenIdle: ThreadStatus | null): Promise<ThreadFacts> {
    const { rows } = await db.query<ThreadFacts>(
      `SELECT (SELECT COUNT(*)::int FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running')) AS inflight,
              COALESCE((SELECT interrupts <> '{}'::jsonb FROM threads WHERE thread_id = $1), false) AS interrupted`,
      [threadId],
    );
    const facts = rows[0]!;
    await db.query("UPDATE threads SET status = $3, updated_at = $2 WHERE thread_id = $1", [threadId, iso, settledStatus(facts, statusWhenIdle)]);
    return facts;
  }

  async claim(worker: string, leaseMs: number, policy?: ClaimPolicy): Promise<Run | null> {
    await this.#settleDoubtfulClaims();
    if (this.#skewed !== undefined) return null;
    // The function takes an INTEGER, or NULL for no cap (then it recounts nothing).
    const cap = policy === undefined ? null : Math.min(policy.maxRunningPerUser, 2_147_483_647);
    let lostRaces = 0;
    let overCap = 0;
    for (;;) {
      const now = this.#clock.nowMs();
      // The claim's stamp (the run's updated_at) is unique per claim of this queue, so a claim in doubt can be found.
      const stampMs = (this.#lastClaimStampMs = Math.max(now, this.#lastClaimStampMs + 1));
      const stamp = isoFromMs(stampMs);
      try {
        const { rows } = await this.#pool.query<RunRow>(CLAIM, [now, cap, worker, now + leaseMs, stamp]);
        return rows[0] === undefined ? null : toRun(rows[0]);
      } catch (error) {
        if (isConnectionError(error instanceof BatonError ? error.cause : error)) this.#doubtfulClaims.push({ worker, stamp });
        const code = pgCode(error);
        // Another claimer took a run of the same thread in the same instant
        // (the unique index refused ours), or that user's last free slot:
        // look again; the next look sees their claims committed.
        if (code === UNIQUE_VIOLATION && ++lostRaces <= 5) continue;
        if (code === OVER_CAP && ++overCap <= 10) continue;
        // Still over after many looks: the user's slots churn; claim again at the next poll.
        if (code === OVER_CAP) return null;
        throw error;
      }
    }
  }

  /**
   * A claim whose connection died may have committed without this process
   * hearing of it: the run would be leased to this worker, which never runs
   * it, while the lease thread (which renews every run the worker holds)
   * keeps it forever. Before claiming again, such runs are handed back to
   * the queue. Throws while the database is still away.
   */
  async #settleDoubtfulClaims(): Promise<void> {
    while (this.#doubtfulClaims.length > 0) {
      const { worker, stamp } = this.#doubtfulClaims[0]!;
      await this.#pool.query(
        "UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL, updated_at = $3 WHERE lease_owner = $1 AND status = 'running' AND updated_at = $2",
        [worker, stamp, isoFromMs(this.#clock.nowMs())],
      );
      this.#doubtfulClaims.shift();
    }
  }

  async extendLeases(owner: string, runIds: string[], leaseMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    // Rows are locked in run_id order, as the lease thread locks them: two
    // renewals of one owner's runs never wait on each other in a cycle.
    const { rows } = await this.#pool.query<{ run_id: string }>(
      `UPDATE runs SET lease_expires_ms = $1
        WHERE run_id IN (SELECT run_id FROM runs WHERE run_id = ANY($2::text[]) AND status = 'running' AND lease_owner = $3
                          ORDER BY run_id FOR UPDATE)
        RETURNING run_id`,
      [this.#clock.nowMs() + leaseMs, runIds, owner],
    );
    const held = new Set(rows.map((r) => r.run_id));
    return runIds.filter((id) => held.has(id));
  }

  /**
   * Records the outcome. A lost connection is retried (the worker would
   * otherwise let the lease expire and run the attempt again). If the
   * connection died while COMMIT was on its way, the outcome may already be
   * recorded: a retry that finds this attempt's run ended with this status,
   * or erased when this outcome erases, reports it recorded.
   */
  async finish(runId: string, fence: Fence, outcome: RunOutcome): Promise<FinishResult> {
    return retryUnavailable((retry) => this.#finishOnce(runId, fence, outcome, retry > 0));
  }

  async #finishOnce(runId: string, fence: Fence, outcome: RunOutcome, retrying: boolean): Promise<FinishResult> {
    return transaction(this.#pool, async (db): Promise<FinishResult> => {
      const threadId = (await db.query<{ thread_id: string }>("SELECT thread_id FROM runs WHERE run_id = $1", [runId])).rows[0]?.thread_id;
      if (threadId === undefined) return retrying && outcome.erase ? "erased" : "fenced";
      await db.query("SELECT 1 FROM threads WHERE thread_id = $1 FOR UPDATE", [threadId]);
      const row = (await db.query<RunRow>("SELECT * FROM runs WHERE run_id = $1", [runId])).rows[0];
      if (retrying && row !== undefined && row.attempt === fence.attempt && row.lease_owner === null && row.status === outcome.status) {
        return "recorded";
      }
      if (row === undefined || row.status !== "running" || row.lease_owner !== fence.owner || row.attempt !== fence.attempt) {
        return "fenced";
      }
      const iso = isoFromMs(this.#clock.nowMs());
      if (outcome.erase || row.cancel_action === "rollback") {
        await this.#erase(db, threadId, runId);
        await this.#settleThread(db, threadId, iso, null);
        return "erased";
      }
      await db.query(
        `UPDATE runs SET status = $2, error = $3, output = $4::jsonb, lease_owner = NULL, lease_expires_ms = NULL, updated_at = $5
          WHERE run_id = $1`,
        [runId, outcome.status, outcome.error, jsonb(outcome.output), iso],
      );
      await db.query(`UPDATE threads SET "values" = $2::jsonb, interrupts = $3::jsonb, error = $4::jsonb, updated_at = $5 WHERE thread_id = $1`, [
        threadId,
        jsonb(outcome.thread.values),
        jsonb(outcome.thread.interrupts),
        outcome.status === "error" ? jsonb(outcome.error) : null,
        iso,
      ]);
      const facts = await this.#settleThread(db, threadId, iso, outcome.thread.status);
      if (dropsTemporaryThread(row.kwargs, facts)) await deleteThreadRows(db, threadId);
      return "recorded";
    });
  }

  /** Inside a transaction: a rollback erases the run and every checkpoint (and pending write) it wrote. */
  async #erase(db: Queryable, threadId: string, runId: string): Promise<void> {
    await db.query(
      `DELETE FROM checkpoint_writes w USING checkpoints c
        WHERE w.thread_id = $1 AND c.thread_id = $1 AND c.run_id = $2
          AND w.checkpoint_ns = c.checkpoint_ns AND w.checkpoint_id = c.checkpoint_id`,
      [threadId, runId],
    );
    await db.query("DELETE FROM checkpoints WHERE thread_id = $1 AND run_id = $2", [threadId, runId]);
    await db.query("DELETE FROM runs WHERE run_id = $1", [runId]);
  }

  async release(runId: string, fence: Fence): Promise<boolean> {
    // Fenced by attempt: repeating it after a lost connection changes nothing more.
    const result = await retryUnavailable(() => this.#pool.query(
      `UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL, updated_at = $2
        WHERE run_id = $1 AND status = 'running' AND lease_owner = $3 AND attempt = $4`,
      [runId, isoFromMs(this.#clock.nowMs()), fence.owner, fence.attempt],
    ));
    return result.rowCount === 1;
  }

  async reschedule(runs: { run_id: string; available_at_ms: number }[]): Promise<void> {
    if (runs.length === 0) return;
    // One statement, the same whenever repeated after a lost connection.
    await retryUnavailable(() =>
      this.#pool.query(
        `UPDATE runs r SET available_at_ms = u.at FROM unnest($1::text[], $2::bigint[]) AS u(run_id, at)
          WHERE r.run_id = u.run_id AND r.status = 'pending'`,
        [runs.map((run) => run.run_id), runs.map((run) => run.available_at_ms)],
      ),
    );
  }

  async sweep(maxAttempts: number, owner?: string): Promise<{ requeued: string[]; failed: AbandonedRun[] }> {
    if (await this.#clockSkewed()) return { requeued: [], failed: [] };
    const now = this.#clock.nowMs();
    const expired = (
      await this.#pool.query<{ run_id: string; thread_id: string }>(
        "SELECT run_id, thread_id FROM runs WHERE status = 'running' AND lease_expires_ms < $1 AND ($2::text IS NULL OR lease_owner = $2) ORDER BY seq",
        [now, owner ?? null],
      )
    ).rows;
    const requeued: string[] = [];
    const failed: AbandonedRun[] = [];
    for (const { run_id: runId, thread_id: threadId } of expired) {
      await transaction(this.#pool, async (db) => {
        await db.query("SELECT 1 FROM threads WHERE thread_id = $1 FOR UPDATE", [threadId]);
        // Judged again under the lock: its worker may have renewed or finished it meanwhile.
        const row = (await db.query<RunRow>("SELECT * FROM runs WHERE run_id = $1 AND status = 'running' AND lease_expires_ms < $2", [runId, now]))
          .rows[0];
        if (row === undefined) return;
        const iso = isoFromMs(now);
        const decision = decideSweep(row.cancel_action, row.attempt, maxAttempts);
        if (decision.kind === "erase") {
          await this.#erase(db, threadId, runId);
          await this.#settleThread(db, threadId, iso, null);
          failed.push({ run_id: runId, ...streamEnding(toRun(row)), ...sweptEnd(runId, decision) });
        } else if (decision.kind === "end") {
          await db.query(
            "UPDATE runs SET status = $2, error = $3, output = $5::jsonb, lease_owner = NULL, lease_expires_ms = NULL, updated_at = $4 WHERE run_id = $1",
            [runId, decision.status, decision.error, iso, jsonb(decision.output)],
          );
          await this.#settleThread(db, threadId, iso, decision.threadStatusWhenIdle);
          failed.push({ run_id: runId, ...streamEnding(toRun(row)), ...sweptEnd(runId, decision) });
        } else {
          await db.query("UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL, updated_at = $2 WHERE run_id = $1", [
            runId,
            iso,
          ]);
          requeued.push(runId);
        }
      });
    }
    return { requeued, failed };
  }

  async expireOverdue(maxWaitMs: number): Promise<OverdueRun[]> {
    if (this.#skewed !== undefined) return [];
    const now = this.#clock.nowMs();
    const overdue = (
      await this.#pool.query<{ run_id: string; thread_id: string; temporary: boolean | null; resumable: boolean | null }>(
        `SELECT run_id, thread_id, (kwargs->>'temporary')::boolean AS temporary, (kwargs->>'stream_resumable')::boolean AS resumable
           FROM runs WHERE status = 'pending' AND available_at_ms <= $1 ORDER BY seq LIMIT 1000`,
        [now - maxWaitMs],
      )
    ).rows;
    const ended: OverdueRun[] = [];
    // One transaction per run under its thread's lock, as a cancel: a claim
    // that took the run meanwhile wins, and the run is left alone.
    for (const { run_id: runId, thread_id: threadId, temporary, resumable } of overdue) {
      await transaction(this.#pool, async (db) => {
        await db.query("SELECT 1 FROM threads WHERE thread_id = $1 FOR UPDATE", [threadId]);
        const failure = queueTimeoutFailure(runId, maxWaitMs);
        const iso = isoFromMs(now);
        const updated = await db.query(
          `UPDATE runs SET status = 'timeout', error = $2, output = $3::jsonb, updated_at = $4
            WHERE run_id = $1 AND status = 'pending' AND available_at_ms <= $5`,
          [runId, failure.message, jsonb({ __error__: failure }), iso, now - maxWaitMs],
        );
        if (updated.rowCount !== 1) return;
        await this.#settleThread(db, threadId, iso, null);
        ended.push({ run_id: runId, thread_log: temporary === true ? undefined : threadId, resumable: resumable === true, failure });
      });
    }
    return ended;
  }

  async cancelAction(runId: string): Promise<CancelAction | null> {
    const { rows } = await retryUnavailable(() =>
      this.#pool.query<{ cancel_action: CancelAction | null }>("SELECT cancel_action FROM runs WHERE run_id = $1", [runId]),
    );
    return rows[0]?.cancel_action ?? null;
  }

  async inflight(threadId: string): Promise<Run[]> {
    return this.#inflight(this.#pool, threadId);
  }

  async lockThread(threadId: string, owner: string, ttlMs: number): Promise<{ locked: true } | { locked: false; busyWith: string }> {
    return transaction(this.#pool, async (db) => {
      const thread = (
        await db.query<{ lock_owner: string | null; lock_expires_ms: number | null }>(
          "SELECT lock_owner, lock_expires_ms FROM threads WHERE thread_id = $1 FOR UPDATE",
          [threadId],
        )
      ).rows[0];
      if (thread === undefined) throw notFound("Thread", threadId);
      // A pending run would start from the state as it was when it was asked for (C2), so it holds the thread too.
      const busy = (
        await db.query<{ run_id: string }>(
          "SELECT run_id FROM runs WHERE thread_id = $1 AND status IN ('pending', 'running') ORDER BY status = 'running' DESC, created_at LIMIT 1",
          [threadId],
        )
      ).rows[0];
      if (busy !== undefined) return { locked: false as const, busyWith: `run ${busy.run_id}` };
      const now = this.#clock.nowMs();
      if (thread.lock_expires_ms !== null && thread.lock_expires_ms > now && thread.lock_owner !== owner) {
        return { locked: false as const, busyWith: "another state update" };
      }
      await db.query("UPDATE threads SET lock_owner = $2, lock_expires_ms = $3 WHERE thread_id = $1", [threadId, owner, now + ttlMs]);
      return { locked: true as const };
    });
  }

  async unlockThread(threadId: string, owner: string): Promise<void> {
    await this.#pool.query("UPDATE threads SET lock_owner = NULL, lock_expires_ms = NULL WHERE thread_id = $1 AND lock_owner = $2", [threadId, owner]);
  }

  /** One read over the partial status indexes: per graph and status, then per-user counts folded into how many users have each count. */
  async stats(nowMs: number): Promise<QueueStats> {
    const { rows } = await this.#pool.query<{ kind: string; status: "pending" | "running"; key: string; n: number; oldest: string | null }>(STATS_SQL, [nowMs]);
    const stats: QueueStats = { graphs: [], users: [] };
    for (const row of rows) {
      if (row.kind === "graph") stats.graphs.push({ graph_id: row.key, status: row.status, runs: row.n, oldest_due_ms: row.oldest === null ? null : Number(row.oldest) });
      else stats.users.push({ status: row.status, runs: Number(row.key), users: row.n });
    }
    return stats;
  }
}

/** `RunQueue.stats` in one statement; a user is its owner, the anonymous user ('' here) counted as one. */
const STATS_SQL = `
  WITH live AS (SELECT graph_id, status, COALESCE(owner, '') AS u, available_at_ms FROM runs WHERE status IN ('pending', 'running'))
  SELECT 'graph' AS kind, status, graph_id AS key, COUNT(*)::int AS n,
         MIN(CASE WHEN status = 'pending' AND available_at_ms <= $1 THEN available_at_ms END) AS oldest
    FROM live GROUP BY status, graph_id
  UNION ALL
  SELECT 'users', status, n::text, COUNT(*)::int, NULL
    FROM (SELECT status, u, COUNT(*) AS n FROM live GROUP BY status, u) per_user GROUP BY status, n`;
