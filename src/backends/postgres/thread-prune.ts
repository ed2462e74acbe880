/**
 * Pruning threads on Postgres: the statements `POST /threads/prune` and the
 * TTL sweep share (docs/threads.md), and the sweep itself, safe with any
 * number of processes sweeping at once.
 */
import type pg from "pg";
import { isoFromMs } from "../../core/clock.ts";
import { expiryMs, planSweep, type ThreadTtlInfo, type TtlRow, type TtlStrategy, type TtlSweep } from "../../core/thread-ttl.ts";
import { transaction, type Queryable } from "./database.ts";
import { deleteThreadsRows } from "./rows.ts";

/**
 * The TTL columns of a thread row (BIGINT arrives as text). `ttl_expires_ms`
 * is a lower bound of the expiry (migration 0011), only the sweep reads it;
 * the expiry shown is computed from `updated_at`.
 */
export interface TtlColumns {
  updated_at: string;
  ttl_strategy: TtlStrategy | null;
  ttl_minutes: number | null;
  ttl_expires_ms: string | number | null;
  ttl_pruned_at?: string | null | undefined;
}

export function ttlInfo(row: TtlColumns): ThreadTtlInfo | null {
  if (row.ttl_strategy === null || row.ttl_minutes === null || row.ttl_strategy === undefined) return null;
  const expiry = expiryMs({ updated_at: row.updated_at, ttl_minutes: row.ttl_minutes, pruned_at: row.ttl_pruned_at ?? null });
  return { strategy: row.ttl_strategy, ttl_minutes: row.ttl_minutes, ...(expiry === null ? {} : { expires_at: isoFromMs(expiry) }) };
}

/**
 * `delete`: removes the threads with their checkpoints and runs (by ON
 * DELETE CASCADE). `keep_latest`: keeps each thread and the latest checkpoint
 * of each of its namespaces, with that checkpoint's pending writes. Call
 * inside a transaction holding the threads' row locks.
 */
export async function pruneThreadRows(db: Queryable, threadIds: readonly string[], strategy: TtlStrategy): Promise<void> {
  if (threadIds.length === 0) return;
  if (strategy === "delete") return deleteThreadsRows(db, threadIds);
  const ids = [...threadIds];
  const older = `SELECT c.thread_id, c.checkpoint_id FROM checkpoints c WHERE c.thread_id = ANY($1::text[]) AND c.checkpoint_id <
                   (SELECT MAX(l.checkpoint_id) FROM checkpoints l WHERE l.thread_id = c.thread_id AND l.checkpoint_ns = c.checkpoint_ns)`;
  await db.query(`DELETE FROM checkpoint_writes WHERE (thread_id, checkpoint_id) IN (${older})`, [ids]);
  await db.query(`DELETE FROM checkpoints WHERE (thread_id, checkpoint_id) IN (${older})`, [ids]);
}

/**
 * The database server's time (epoch ms): what a scheduled sweep judges
 * expiry by, so a process whose clock is skewed (ahead: it would delete
 * early) sweeps as the others do. Expiries are written with the writers'
 * clocks, which the lease clock guard keeps near the database's.
 */
async function databaseNowMs(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ now_ms: string }>("SELECT floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint AS now_ms");
  return Number(rows[0]!.now_ms);
}

/**
 * One TTL sweep, in one transaction, as of `atMs` (the database's time when
 * undefined):
 *
 * 1. Claims the threads whose expiry's lower bound passed (no pending or
 *    running run, no enabled cron, no state-update lock), oldest bound
 *    first, with `FOR UPDATE SKIP LOCKED`: a thread another sweeper holds is
 *    skipped, never waited for or taken twice, and while this transaction
 *    holds a thread's row, no run is created (creation locks the row) or
 *    claimed (the claim skips locked threads) on it.
 * 2. Reads again, now that the locks are held, which of them still have no
 *    pending or running run and no enabled cron: a run created or claimed,
 *    or a cron created or enabled, after step 1's snapshot and before its
 *    lock is seen here (a new statement, a new snapshot), and its thread is
 *    left alone.
 * 3. Judges each by its last activity (`planSweep`): an expired one is
 *    pruned by its own strategy (`keep_latest` ones are disarmed until their
 *    next activity); one used since has its bound moved to its expiry.
 *    Moved threads do not count against `limit`: the claim repeats until
 *    `limit` threads were pruned or none is left.
 */
export async function sweepExpiredThreads(pool: pg.Pool, atMs: number | undefined, limit: number): Promise<TtlSweep> {
  return transaction(pool, async (db) => {
    const nowMs = atMs ?? (await databaseNowMs(db));
    const done: TtlSweep = { deleted: [], pruned: [] };
    const skipped: string[] = [];
    for (;;) {
      const left = limit - done.deleted.length - done.pruned.length;
      if (left <= 0) break;
      const { rows: found } = await db.query<TtlRow>(
        `SELECT t.thread_id, t.ttl_strategy, t.ttl_minutes, t.updated_at, t.ttl_pruned_at FROM threads t
          WHERE t.ttl_expires_ms IS NOT NULL AND t.ttl_expires_ms <= $1
            AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= $1)
            AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
            AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id AND c.enabled)
            AND t.thread_id <> ALL($3::text[])
          ORDER BY t.ttl_expires_ms
          LIMIT $2
          FOR UPDATE OF t SKIP LOCKED`,
        [nowMs, left, skipped],
      );
      if (found.length === 0) break;
      const { rows: idle } = await db.query<{ thread_id: string }>(
        `SELECT x.thread_id FROM unnest($1::text[]) AS x(thread_id)
          WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = x.thread_id AND r.status IN ('pending', 'running'))
            AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = x.thread_id AND c.enabled)`,
        [found.map((row) => row.thread_id)],
      );
      const still = new Set(idle.map((row) => row.thread_id));
      skipped.push(...found.filter((row) => !still.has(row.thread_id)).map((row) => row.thread_id));
      await sweepBatch(db, found.filter((row) => still.has(row.thread_id)), nowMs, done);
    }
    return done;
  });
}

/** Prunes the expired threads of `rows` into `done`, and moves the others' bounds. */
async function sweepBatch(db: Queryable, rows: TtlRow[], nowMs: number, done: TtlSweep): Promise<void> {
  const { deleted, pruned, moved } = planSweep(rows, nowMs);
  await pruneThreadRows(db, deleted, "delete");
  await pruneThreadRows(
    db,
    pruned.map((row) => row.thread_id),
    "keep_latest",
  );
  // Disarmed at this activity; looked at again one TTL later (it stays disarmed until the thread is used).
  for (const row of pruned) moved.push({ thread_id: row.thread_id, atMs: row.recheckAtMs });
  if (pruned.length > 0) {
    await db.query("UPDATE threads SET ttl_pruned_at = updated_at WHERE thread_id = ANY($1::text[])", [pruned.map((row) => row.thread_id)]);
  }
  if (moved.length > 0) {
    await db.query(
      `UPDATE threads t SET ttl_expires_ms = m.at FROM unnest($1::text[], $2::bigint[]) AS m(thread_id, at) WHERE t.thread_id = m.thread_id`,
      [moved.map((m) => m.thread_id), moved.map((m) => m.atMs)],
    );
  }
  done.deleted.push(...deleted);
  done.pruned.push(...pruned.map((row) => row.thread_id));
}
