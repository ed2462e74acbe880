/**
 * Pruning threads on SQLite: the statements `POST /threads/prune` and the
 * TTL sweep share (docs/threads.md). Each function runs inside the caller's
 * transaction.
 */
import type { Database } from "better-sqlite3";
import type { ThreadTtl, ThreadTtlInfo, TtlStrategy, TtlSweep } from "../../core/thread-ttl.ts";
import { isoFromMs } from "../../core/clock.ts";
import { deleteThreadsRows, inList } from "./rows.ts";

/** The TTL columns of a thread row. */
export interface TtlColumns {
  ttl_strategy: TtlStrategy | null;
  ttl_minutes: number | null;
  ttl_expires_ms: number | null;
}

export const ttlInfo = (row: TtlColumns): ThreadTtlInfo | null =>
  row.ttl_strategy === null || row.ttl_minutes === null
    ? null
    : { strategy: row.ttl_strategy, ttl_minutes: row.ttl_minutes, ...(row.ttl_expires_ms === null ? {} : { expires_at: isoFromMs(row.ttl_expires_ms) }) };

/** Sets a thread's TTL; the trigger counts its expiry from the thread's last activity (`updated_at`). */
export function setTtl(db: Database, threadId: string, ttl: ThreadTtl): void {
  db.prepare("UPDATE threads SET ttl_strategy = ?, ttl_minutes = ? WHERE thread_id = ?").run(
    ttl.strategy,
    ttl.minutes,
    threadId,
  );
}

/**
 * `delete`: removes the threads with their checkpoints and runs (by ON
 * DELETE CASCADE). `keep_latest`: keeps each thread and the latest checkpoint
 * of each of its namespaces, with that checkpoint's pending writes.
 */
export function pruneThreadRows(db: Database, threadIds: readonly string[], strategy: TtlStrategy): void {
  if (threadIds.length === 0) return;
  if (strategy === "delete") return deleteThreadsRows(db, threadIds);
  const ids = (args: unknown[]) => inList("thread_id", threadIds, args);
  const args: unknown[] = [];
  const older = `SELECT c.thread_id, c.checkpoint_id FROM checkpoints c WHERE c.${ids(args)} AND c.checkpoint_id <
                   (SELECT MAX(l.checkpoint_id) FROM checkpoints l WHERE l.thread_id = c.thread_id AND l.checkpoint_ns = c.checkpoint_ns)`;
  db.prepare(`DELETE FROM checkpoint_writes WHERE (thread_id, checkpoint_id) IN (${older})`).run(...args);
  db.prepare(`DELETE FROM checkpoints WHERE (thread_id, checkpoint_id) IN (${older})`).run(...args);
}

/**
 * One TTL sweep in one IMMEDIATE transaction (the write lock is held from
 * the first read, so no run is created or claimed on a thread between the
 * check and the prune): expired threads with no pending or running run, no
 * enabled cron and no state-update lock, oldest expiry first; `keep_latest` ones are
 * disarmed until their next activity.
 */
export function sweepExpiredThreads(db: Database, nowMs: number, limit: number): TtlSweep {
  const due = db
    .prepare<[number, number, number], { thread_id: string; ttl_strategy: TtlStrategy }>(
      `SELECT t.thread_id, t.ttl_strategy FROM threads t
        WHERE t.ttl_expires_ms IS NOT NULL AND t.ttl_expires_ms <= ?
          AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= ?)
          AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
          AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id AND c.enabled = 1)
        ORDER BY t.ttl_expires_ms LIMIT ?`,
    )
    .all(nowMs, nowMs, limit);
  const deleted = due.filter((row) => row.ttl_strategy !== "keep_latest").map((row) => row.thread_id);
  const pruned = due.filter((row) => row.ttl_strategy === "keep_latest").map((row) => row.thread_id);
  pruneThreadRows(db, deleted, "delete");
  pruneThreadRows(db, pruned, "keep_latest");
  if (pruned.length > 0) {
    const args: unknown[] = [];
    db.prepare(`UPDATE threads SET ttl_expires_ms = NULL WHERE ${inList("thread_id", pruned, args)}`).run(...args);
  }
  return { deleted, pruned };
}
