/**
 * The run queue on SQLite: the runs table is the queue. Every state change
 * is one IMMEDIATE transaction (it takes the file's write lock before its
 * first read, so connections in execution threads never act on a stale
 * read); the claim is one UPDATE whose subquery skips threads that have a
 * running run (C1), with the partial unique index
 * `runs_one_running_per_thread` as the backstop.
 */
import type { Database, Statement } from "better-sqlite3";
import { checkQueueRoom, decideAdmission, queueTimeoutFailure, type QueueLimits } from "../../core/admission.ts";
import { dropsTemporaryThread, settledStatus, type ThreadFacts } from "../../core/settle.ts";
import type { Clock } from "../../core/clock.ts";
import { isoFromMs } from "../../core/clock.ts";
import { BatonError, ErrorCode, notFound } from "../../core/errors.ts";
import { decideSweep, stoppedFailure, sweptEnd } from "../../core/stopped.ts";
import { mergeThreadConfig } from "../../core/thread-config.ts";
import type { AbandonedRun, CancelledRun, ClaimPolicy, Fence, FinishResult, NewRun, OverdueRun, Page, QueueStats, RunCreated, RunOutcome, RunQueue } from "../../core/ports.ts";
import { streamEnding, type CancelAction, type Run, type RunStatus, type RunnableConfigRecord, type ThreadStatus } from "../../core/types.ts";
import { deleteThreadRows, json, toRun, type RunRow } from "./rows.ts";
import { claimCronFire } from "./crons.ts";

export class SqliteRunQueue implements RunQueue {
  readonly #db: Database;
  readonly #clock: Clock;
  readonly #claim: Statement<[{ worker: string; expires: number; iso: string; now: number; maxRunningPerUser: number }], RunRow>;
  readonly #inflight: Statement<[string], RunRow>;
  readonly #byId: Statement<[string], RunRow>;
  readonly #insert: Statement<unknown[]>;
  readonly #threadStatus: Statement<unknown[]>;
  readonly #countInflight: Statement<[string], { n: number }>;
  readonly #anyDue: Statement<[number], { due: number }>;

  constructor(db: Database, clock: Clock) {
    this.#db = db;
    this.#clock = clock;
    // Only the oldest pending run of each thread is eligible (FIFO within a
    // thread by (available_at_ms, seq)), never one whose thread has a running
    // run (C1) or a state-update lock. Named users at the cap are skipped;
    // the anonymous user ('' here, owner NULL) is bounded only by the
    // workers. Order: priority, then the user with fewer running runs, then
    // FIFO (docs/scheduling.md). `busy` is counted once per claim.
    this.#claim = db.prepare(`
      UPDATE runs
         SET status = 'running', attempt = attempt + 1, lease_owner = @worker, lease_expires_ms = @expires, updated_at = @iso
       WHERE seq = (
         WITH busy AS (SELECT COALESCE(owner, '') AS u, COUNT(*) AS n FROM runs WHERE status = 'running' GROUP BY 1)
         SELECT r.seq FROM runs r LEFT JOIN busy b ON b.u = COALESCE(r.owner, '')
          WHERE r.status = 'pending' AND r.available_at_ms <= @now
            AND NOT EXISTS (SELECT 1 FROM runs x WHERE x.thread_id = r.thread_id AND x.status = 'running')
            AND NOT EXISTS (SELECT 1 FROM threads t WHERE t.thread_id = r.thread_id AND t.lock_expires_ms > @now)
            AND (r.owner IS NULL OR COALESCE(b.n, 0) < @maxRunningPerUser)
            AND NOT EXISTS (
              SELECT 1 FROM runs y
               WHERE y.thread_id = r.thread_id AND y.status = 'pending'
                 AND (y.available_at_ms < r.available_at_ms OR (y.available_at_ms = r.available_at_ms AND y.seq < r.seq)))
          ORDER BY r.priority DESC, COALESCE(b.n, 0), r.available_at_ms, r.seq
          LIMIT 1)
      RETURNING *`);
    this.#inflight = db.prepare(
      "SELECT * FROM runs WHERE thread_id = ? AND status IN ('pending', 'running') ORDER BY available_at_ms, seq",
    );
    this.#byId = db.prepare("SELECT * FROM runs WHERE run_id = ?");
    this.#anyDue = db.prepare("SELECT 1 AS due FROM runs WHERE status = 'pending' AND available_at_ms <= ? LIMIT 1");
    this.#insert = db.prepare(`
      INSERT INTO runs (run_id, thread_id, assistant_id, graph_id, status, metadata, multitask_strategy, kwargs,
                        available_at_ms, owner, priority, dedupe_key, created_at, updated_at)
      VALUES (?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?, ?, ?, ?)`);
    this.#threadStatus = db.prepare("UPDATE threads SET status = ?, updated_at = ? WHERE thread_id = ?");
    this.#countInflight = db.prepare(
      "SELECT COUNT(*) AS n FROM runs WHERE thread_id = ? AND status IN ('pending', 'running')",
    );
  }

  async create(input: NewRun, limits?: QueueLimits): Promise<RunCreated> {
    return this.#db.transaction((): RunCreated => {
      const now = this.#clock.nowMs();
      const iso = isoFromMs(now);
      const thread = this.#db.prepare("SELECT thread_id, metadata, config FROM threads WHERE thread_id = ?").get(input.thread_id) as
        | { thread_id: string; metadata: string; config: string }
        | undefined;
      if (thread === undefined) {
        if (input.if_not_exists === "reject") throw notFound("Thread", input.thread_id);
        this.#db
          .prepare(
            `INSERT INTO threads (thread_id, created_at, updated_at, metadata, status, "values", interrupts, config, ttl_strategy, ttl_minutes)
             VALUES (?, ?, ?, ?, 'busy', NULL, '{}', '{}', ?, ?)`,
          )
          .run(input.thread_id, iso, iso, json(input.thread_metadata), input.thread_ttl?.strategy ?? null, input.thread_ttl?.minutes ?? null);
      } else {
        // The official server records on the thread which graph last ran on it.
        const metadata = { ...(JSON.parse(thread.metadata) as Record<string, unknown>) };
        metadata.graph_id = input.graph_id;
        metadata.assistant_id = input.assistant_id;
        this.#db.prepare("UPDATE threads SET metadata = ? WHERE thread_id = ?").run(json(metadata), input.thread_id);
      }
      if (input.cron_fire !== undefined) claimCronFire(this.#db, input.cron_fire, input.run_id, now);
      const owner = input.owner;
      if (limits !== undefined) {
        const pending = this.#db
          .prepare("SELECT COUNT(*) AS total, COALESCE(SUM(owner IS ?), 0) AS mine FROM runs WHERE status = 'pending'")
          .get(owner) as { total: number; mine: number };
        checkQueueRoom(limits, owner, pending.mine, pending.total);
      }
      const config = mergeThreadConfig(thread === undefined ? {} : (JSON.parse(thread.config) as RunnableConfigRecord), input.kwargs.config);
      this.#db.prepare("UPDATE threads SET config = ? WHERE thread_id = ?").run(json(config.thread), input.thread_id);
      const inflight = this.#inflight.all(input.thread_id).map(toRun);
      const order = decideAdmission(input.multitask_strategy, inflight);
      const cancelled = order.cancel.map(({ run, action }) => this.#cancelOne(run, action, iso));
      this.#insert.run(
        input.run_id,
        input.thread_id,
        input.assistant_id,
        input.graph_id,
        json(input.metadata),
        input.multitask_strategy,
        json({ ...input.kwargs, config: config.run }),
        Math.max(now, input.available_at_ms),
        owner,
        input.priority,
        input.dedupe_key,
        iso,
        iso,
      );
      this.#threadStatus.run("busy", iso, input.thread_id);
      return { run: toRun(this.#byId.get(input.run_id)!), cancelled };
    }).immediate();
  }

  async get(runId: string, threadId?: string): Promise<Run | null> {
    const row = this.#byId.get(runId);
    if (row === undefined || (threadId !== undefined && row.thread_id !== threadId)) return null;
    return toRun(row);
  }

  async list(threadId: string, query: Page & { status?: RunStatus | undefined }): Promise<Run[]> {
    const args: unknown[] = [threadId];
    let sql = "SELECT * FROM runs WHERE thread_id = ?";
    if (query.status !== undefined) {
      sql += " AND status = ?";
      args.push(query.status);
    }
    sql += " ORDER BY seq DESC LIMIT ? OFFSET ?";
    args.push(query.limit, query.offset);
    return this.#db.prepare<unknown[], RunRow>(sql).all(...args).map(toRun);
  }

  async delete(threadId: string, runId: string): Promise<boolean> {
    return this.#db.transaction(() => {
      const row = this.#byId.get(runId);
      if (row === undefined || row.thread_id !== threadId) return false;
      if (row.status === "pending" || row.status === "running") {
        throw new BatonError(
          ErrorCode.conflict,
          `Run '${runId}' is ${row.status}; cancel it first (POST /threads/${threadId}/runs/${runId}/cancel), then delete it.`,
        );
      }
      this.#db.prepare("DELETE FROM runs WHERE run_id = ?").run(runId);
      return true;
    }).immediate();
  }

  async cancel(runIds: string[], action: CancelAction): Promise<CancelledRun[]> {
    return this.#db.transaction(() => {
      const iso = isoFromMs(this.#clock.nowMs());
      const done: CancelledRun[] = [];
      for (const runId of runIds) {
        const row = this.#byId.get(runId);
        if (row === undefined || (row.status !== "pending" && row.status !== "running")) continue;
        const { action: _action, ...result } = this.#cancelOne(toRun(row), action, iso);
        done.push(result);
      }
      return done;
    }).immediate();
  }

  /** Inside a transaction: stop one in-flight run. */
  #cancelOne(run: Run, action: CancelAction, iso: string): RunCreated["cancelled"][number] {
    if (run.status === "running") {
      // The worker executing it sees the flag (and the bus signal), stops the
      // graph and finishes the run itself, fenced by its lease.
      this.#db.prepare("UPDATE runs SET cancel_action = ?, updated_at = ? WHERE run_id = ?").run(action, iso, run.run_id);
      return { run_id: run.run_id, action, was_running: true, ...streamEnding(run) };
    }
    if (action === "rollback") {
      this.#db.prepare("DELETE FROM runs WHERE run_id = ?").run(run.run_id);
    } else {
      // Its answer is recorded with it: a `wait` that looks later reads it here.
      this.#db
        .prepare("UPDATE runs SET status = 'interrupted', cancel_action = ?, output = ?, updated_at = ? WHERE run_id = ?")
        .run(action, json({ __error__: stoppedFailure(run.run_id, action, false) }), iso, run.run_id);
    }
    this.#settleThread(run.thread_id, iso, null);
    return { run_id: run.run_id, action, was_running: false, ...streamEnding(run) };
  }

  /** Inside a transaction: the thread's facts now (src/core/settle.ts). */
  #threadFacts(threadId: string): ThreadFacts {
    const row = this.#db.prepare("SELECT interrupts FROM threads WHERE thread_id = ?").get(threadId) as { interrupts: string } | undefined;
    return {
      inflight: this.#countInflight.get(threadId)!.n,
      interrupted: row !== undefined && Object.keys(JSON.parse(row.interrupts) as object).length > 0,
    };
  }

  /** Inside a transaction: stores the status the thread settles to after a run ended or stopped (src/core/settle.ts). */
  #settleThread(threadId: string, iso: string, statusWhenIdle: ThreadStatus | null): ThreadFacts {
    const facts = this.#threadFacts(threadId);
    this.#threadStatus.run(settledStatus(facts, statusWhenIdle), iso, threadId);
    return facts;
  }

  async claim(worker: string, leaseMs: number, policy?: ClaimPolicy): Promise<Run | null> {
    const now = this.#clock.nowMs();
    // An UPDATE takes the file's write lock even when it matches nothing; most
    // claims find the queue empty (a pool looks again whenever a run ends), so
    // a lock-free read of the pending index answers those.
    if (this.#anyDue.get(now) === undefined) return null;
    const maxRunningPerUser = policy?.maxRunningPerUser ?? Number.MAX_SAFE_INTEGER;
    const row = this.#claim.get({ worker, expires: now + leaseMs, iso: isoFromMs(now), now, maxRunningPerUser });
    return row === undefined ? null : toRun(row);
  }

  async extendLeases(owner: string, runIds: string[], leaseMs: number): Promise<string[]> {
    if (runIds.length === 0) return [];
    const expires = this.#clock.nowMs() + leaseMs;
    const stmt = this.#db.prepare<unknown[], { run_id: string }>(
      "UPDATE runs SET lease_expires_ms = ? WHERE run_id = ? AND status = 'running' AND lease_owner = ? RETURNING run_id",
    );
    return this.#db.transaction(() => runIds.filter((id) => stmt.get(expires, id, owner) !== undefined)).immediate();
  }

  async finish(runId: string, fence: Fence, outcome: RunOutcome): Promise<FinishResult> {
    return this.#db.transaction((): FinishResult => {
      const row = this.#byId.get(runId);
      if (row === undefined || row.status !== "running" || row.lease_owner !== fence.owner || row.attempt !== fence.attempt) {
        return "fenced";
      }
      const iso = isoFromMs(this.#clock.nowMs());
      if (outcome.erase || row.cancel_action === "rollback") {
        this.#erase(row.thread_id, runId);
        this.#settleThread(row.thread_id, iso, null);
        return "erased";
      }
      this.#db
        .prepare(
          "UPDATE runs SET status = ?, error = ?, output = ?, lease_owner = NULL, lease_expires_ms = NULL, updated_at = ? WHERE run_id = ?",
        )
        .run(outcome.status, outcome.error, json(outcome.output), iso, runId);
      this.#db
        .prepare(`UPDATE threads SET "values" = ?, interrupts = ?, error = ?, updated_at = ? WHERE thread_id = ?`)
        .run(
          json(outcome.thread.values),
          json(outcome.thread.interrupts),
          outcome.status === "error" ? json(outcome.error) : null,
          iso,
          row.thread_id,
        );
      const facts = this.#settleThread(row.thread_id, iso, outcome.thread.status);
      if (dropsTemporaryThread(JSON.parse(row.kwargs) as Run["kwargs"], facts)) deleteThreadRows(this.#db, row.thread_id);
      return "recorded";
    }).immediate();
  }

  /** Inside a transaction: a rollback erases the run and every checkpoint (and pending write) it wrote. */
  #erase(threadId: string, runId: string): void {
    this.#db
      .prepare(
        `DELETE FROM checkpoint_writes WHERE thread_id = ? AND checkpoint_id IN
           (SELECT checkpoint_id FROM checkpoints WHERE thread_id = ? AND run_id = ?)`,
      )
      .run(threadId, threadId, runId);
    this.#db.prepare("DELETE FROM checkpoints WHERE thread_id = ? AND run_id = ?").run(threadId, runId);
    this.#db.prepare("DELETE FROM runs WHERE run_id = ?").run(runId);
  }

  async release(runId: string, fence: Fence): Promise<boolean> {
    const result = this.#db
      .prepare(
        `UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL, updated_at = ?
          WHERE run_id = ? AND status = 'running' AND lease_owner = ? AND attempt = ?`,
      )
      .run(isoFromMs(this.#clock.nowMs()), runId, fence.owner, fence.attempt);
    return result.changes === 1;
  }

  async reschedule(runs: { run_id: string; available_at_ms: number }[]): Promise<void> {
    const update = this.#db.prepare("UPDATE runs SET available_at_ms = ? WHERE run_id = ? AND status = 'pending'");
    this.#db.transaction(() => {
      for (const run of runs) update.run(run.available_at_ms, run.run_id);
    }).immediate();
  }

  async sweep(maxAttempts: number, owner?: string): Promise<{ requeued: string[]; failed: AbandonedRun[] }> {
    return this.#db.transaction(() => {
      const now = this.#clock.nowMs();
      const iso = isoFromMs(now);
      const expired = this.#db
        .prepare<[{ now: number; owner: string | null }], RunRow>(
          "SELECT * FROM runs WHERE status = 'running' AND lease_expires_ms < @now AND (@owner IS NULL OR lease_owner = @owner)",
        )
        .all({ now, owner: owner ?? null });
      const requeued: string[] = [];
      const failed: AbandonedRun[] = [];
      for (const row of expired) {
        const decision = decideSweep(row.cancel_action, row.attempt, maxAttempts);
        if (decision.kind === "requeue") {
          this.#db
            .prepare("UPDATE runs SET status = 'pending', lease_owner = NULL, lease_expires_ms = NULL, updated_at = ? WHERE run_id = ?")
            .run(iso, row.run_id);
          requeued.push(row.run_id);
          continue;
        }
        if (decision.kind === "erase") {
          this.#erase(row.thread_id, row.run_id);
          this.#settleThread(row.thread_id, iso, null);
        } else {
          this.#db
            .prepare("UPDATE runs SET status = ?, error = ?, output = ?, lease_owner = NULL, lease_expires_ms = NULL, updated_at = ? WHERE run_id = ?")
            .run(decision.status, decision.error, json(decision.output), iso, row.run_id);
          this.#settleThread(row.thread_id, iso, decision.threadStatusWhenIdle);
        }
        failed.push({ run_id: row.run_id, ...streamEnding(toRun(row)), ...sweptEnd(row.run_id, decision) });
      }
      return { requeued, failed };
    }).immediate();
  }

  async expireOverdue(maxWaitMs: number): Promise<OverdueRun[]> {
    const now = this.#clock.nowMs();
    // Lock-free look first (a pending run due by then): most sweeps find nothing overdue.
    if (this.#anyDue.get(now - maxWaitMs) === undefined) return [];
    return this.#db.transaction(() => {
      const iso = isoFromMs(now);
      const rows = this.#db
        .prepare<[number], { run_id: string; thread_id: string; kwargs: string }>(
          "SELECT run_id, thread_id, kwargs FROM runs WHERE status = 'pending' AND available_at_ms <= ? ORDER BY seq LIMIT 1000",
        )
        .all(now - maxWaitMs);
      return rows.map(({ run_id: runId, thread_id: threadId, kwargs }) => {
        const failure = queueTimeoutFailure(runId, maxWaitMs);
        this.#db
          .prepare("UPDATE runs SET status = 'timeout', error = ?, output = ?, updated_at = ? WHERE run_id = ?")
          .run(failure.message, json({ __error__: failure }), iso, runId);
        this.#settleThread(threadId, iso, null);
        return { run_id: runId, ...streamEnding({ thread_id: threadId, kwargs: JSON.parse(kwargs) as Run["kwargs"] }), failure };
      });
    }).immediate();
  }

  /** Runs of an execution thread that died are expired at once (its process saw it die). */
  expireOwner(owner: string): void {
    this.#db.prepare("UPDATE runs SET lease_expires_ms = 0 WHERE status = 'running' AND lease_owner = ?").run(owner);
  }

  /** Embedded mode owns its file: runs left running by a dead process are expired at once. */
  expireAll(): void {
    this.#db.prepare("UPDATE runs SET lease_expires_ms = 0 WHERE status = 'running'").run();
  }

  async cancelAction(runId: string): Promise<CancelAction | null> {
    return this.#byId.get(runId)?.cancel_action ?? null;
  }

  async inflight(threadId: string): Promise<Run[]> {
    return this.#inflight.all(threadId).map(toRun);
  }

  async lockThread(threadId: string, owner: string, ttlMs: number): Promise<{ locked: true } | { locked: false; busyWith: string }> {
    return this.#db.transaction(() => {
      // A pending run would start from the state as it was when it was asked for (C2), so it holds the thread too.
      const busy = this.#db
        .prepare("SELECT run_id FROM runs WHERE thread_id = ? AND status IN ('pending', 'running') ORDER BY status = 'running' DESC, created_at LIMIT 1")
        .get(threadId) as { run_id: string } | undefined;
      if (busy !== undefined) return { locked: false as const, busyWith: `run ${busy.run_id}` };
      const now = this.#clock.nowMs();
      const taken = this.#db
        .prepare(
          `UPDATE threads SET lock_owner = ?, lock_expires_ms = ?
            WHERE thread_id = ? AND (lock_expires_ms IS NULL OR lock_expires_ms <= ? OR lock_owner = ?)`,
        )
        .run(owner, now + ttlMs, threadId, now, owner);
      if (taken.changes === 0) {
        const holder = this.#db.prepare("SELECT lock_owner FROM threads WHERE thread_id = ?").get(threadId) as { lock_owner: string | null } | undefined;
        if (holder === undefined) throw notFound("Thread", threadId);
        return { locked: false as const, busyWith: "another state update" };
      }
      return { locked: true as const };
    }).immediate();
  }

  async unlockThread(threadId: string, owner: string): Promise<void> {
    this.#db.prepare("UPDATE threads SET lock_owner = NULL, lock_expires_ms = NULL WHERE thread_id = ? AND lock_owner = ?").run(threadId, owner);
  }

  /** One read over the partial status indexes: per graph and status, then per-user counts folded into how many users have each count. */
  async stats(nowMs: number): Promise<QueueStats> {
    const rows = this.#db.prepare(STATS_SQL).all(nowMs) as { kind: string; status: "pending" | "running"; key: string; n: number; oldest: number | null }[];
    const stats: QueueStats = { graphs: [], users: [] };
    for (const row of rows) {
      if (row.kind === "graph") stats.graphs.push({ graph_id: row.key, status: row.status, runs: row.n, oldest_due_ms: row.oldest });
      else stats.users.push({ status: row.status, runs: Number(row.key), users: row.n });
    }
    return stats;
  }
}

/** `RunQueue.stats` in one statement; a user is its owner, the anonymous user ('' here) counted as one. */
const STATS_SQL = `
  WITH live AS (SELECT graph_id, status, COALESCE(owner, '') AS u, available_at_ms FROM runs WHERE status IN ('pending', 'running'))
  SELECT 'graph' AS kind, status, graph_id AS key, COUNT(*) AS n,
         MIN(CASE WHEN status = 'pending' AND available_at_ms <= ? THEN available_at_ms END) AS oldest
    FROM live GROUP BY status, graph_id
  UNION ALL
  SELECT 'users', status, CAST(n AS TEXT), COUNT(*), NULL
    FROM (SELECT status, u, COUNT(*) AS n FROM live GROUP BY status, u) GROUP BY status, n`;
