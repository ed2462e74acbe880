/**
 * Pruning threads on Postgres: the statements `POST /threads/prune` and the
 * TTL sweep share (docs/threads.md), and the sweep itself, safe with any
 * number of processes sweeping at once.
 */
import type pg from "pg";
import { isoFromMs } from "../../core/clock.ts";
import type { ThreadTtlInfo, TtlStrategy, TtlSweep } from "../../core/thread-ttl.ts";
import { transaction, type Queryable } from "./database.ts";
import { deleteThreadsRows } from "./rows.ts";

/** The TTL columns of a thread row (BIGINT arrives as text). */
export interface TtlColumns {
  ttl_strategy: TtlStrategy | null;
  ttl_minutes: number | null;
  ttl_expires_ms: string | number | null;
}

export const ttlInfo = (row: TtlColumns): ThreadTtlInfo | null =>
  row.ttl_strategy === null || row.ttl_minutes === null || row.ttl_strategy === undefined
    ? null
    : { strategy: row.ttl_strategy, ttl_minutes: row.ttl_minutes, ...(row.ttl_expires_ms === null ? {} : { expires_at: isoFromMs(Number(row.ttl_expires_ms)) }) };

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
 * 1. Claims the due threads (expired, no pending or running run, no
 *    enabled cron, no state-update lock), oldest expiry first, with `FOR UPDATE SKIP LOCKED`:
 *    a thread another sweeper holds is skipped, never waited for or taken
 *    twice, and while this transaction holds a thread's row, no run is
 *    created (creation locks the row) or claimed (the claim skips locked
 *    threads) on it.
 * 2. Reads again, now that the locks are held, which of them still have no
 *    pending or running run and no enabled cron: a run created or claimed,
 *    or a cron created or enabled, after step 1's snapshot and before its
 *    lock is seen here (a new statement, a new snapshot), and its thread is
 *    left alone.
 * 3. Prunes them by their own strategy; `keep_latest` ones are disarmed
 *    until their next activity.
 */
export async function sweepExpiredThreads(pool: pg.Pool, atMs: number | undefined, limit: number): Promise<TtlSweep> {
  return transaction(pool, async (db) => {
    const nowMs = atMs ?? (await databaseNowMs(db));
    const { rows: due } = await db.query<{ thread_id: string; ttl_strategy: TtlStrategy }>(
      `SELECT t.thread_id, t.ttl_strategy FROM threads t
        WHERE t.ttl_expires_ms IS NOT NULL AND t.ttl_expires_ms <= $1
          AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= $1)
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
          AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id AND c.enabled)
        ORDER BY t.ttl_expires_ms
        LIMIT $2
        FOR UPDATE OF t SKIP LOCKED`,
      [nowMs, limit],
    );
    if (due.length === 0) return { deleted: [], pruned: [] };
    const { rows: idle } = await db.query<{ thread_id: string }>(
      `SELECT x.thread_id FROM unnest($1::text[]) AS x(thread_id)
        WHERE NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = x.thread_id AND r.status IN ('pending', 'running'))
          AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = x.thread_id AND c.enabled)`,
      [due.map((row) => row.thread_id)],
    );
    const still = new Set(idle.map((row) => row.thread_id));
    const taken = due.filter((row) => still.has(row.thread_id));
    const deleted = taken.filter((row) => row.ttl_strategy !== "keep_latest").map((row) => row.thread_id);
    const pruned = taken.filter((row) => row.ttl_strategy === "keep_latest").map((row) => row.thread_id);
    await pruneThreadRows(db, deleted, "delete");
    await pruneThreadRows(db, pruned, "keep_latest");
    if (pruned.length > 0) await db.query("UPDATE threads SET ttl_expires_ms = NULL WHERE thread_id = ANY($1::text[])", [pruned]);
    return { deleted, pruned };
  });
}
