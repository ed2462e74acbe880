/**
 * Pruning threads on SQLite: the statements `POST /threads/prune` and the
 * TTL sweep share (docs/threads.md). Each function runs inside the caller's
 * transaction.
 */
import type { Database } from "better-sqlite3";
import { expiryMs, planSweep, type ThreadTtl, type ThreadTtlInfo, type TtlRow, type TtlStrategy, type TtlSweep } from "../../core/thread-ttl.ts";
import { isoFromMs } from "../../core/clock.ts";
import { deleteThreadsRows, inList } from "./rows.ts";

/**
 * The TTL columns of a thread row. `ttl_expires_ms` is a lower bound of the
 * expiry (migration 0011), only the sweep reads it; the expiry shown is
 * computed from `updated_at`.
 */
export interface TtlColumns {
  updated_at: string;
  ttl_strategy: TtlStrategy | null;
  ttl_minutes: number | null;
  ttl_expires_ms: number | null;
  ttl_pruned_at?: string | null | undefined;
}

export function ttlInfo(row: TtlColumns): ThreadTtlInfo | null {
  if (row.ttl_strategy === null || row.ttl_minutes === null) return null;
  const expiry = expiryMs({ updated_at: row.updated_at, ttl_minutes: row.ttl_minutes, pruned_at: row.ttl_pruned_at ?? null });
  return { strategy: row.ttl_strategy, ttl_minutes: row.ttl_minutes, ...(expiry === null ? {} : { expires_at: isoFromMs(expiry) }) };
}

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
 * check and the prune): threads whose expiry's lower bound passed, with no
 * pending or running run, no enabled cron and no state-update lock, oldest
 * bound first, judged by their last activity (`planSweep`): expired
 * ones are pruned (`keep_latest` ones disarmed until their next activity),
 * the others have their bound moved to their expiry, and do not count
 * against `limit`.
 */
export function sweepExpiredThreads(db: Database, nowMs: number, limit: number): TtlSweep {
  const done: TtlSweep = { deleted: [], pruned: [] };
  const find = db.prepare<[number, number, number], TtlRow>(
    `SELECT t.thread_id, t.ttl_strategy, t.ttl_minutes, t.updated_at, t.ttl_pruned_at FROM threads t
      WHERE t.ttl_expires_ms IS NOT NULL AND t.ttl_expires_ms <= ?
        AND (t.lock_expires_ms IS NULL OR t.lock_expires_ms <= ?)
        AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.thread_id = t.thread_id AND r.status IN ('pending', 'running'))
        AND NOT EXISTS (SELECT 1 FROM crons c WHERE c.thread_id = t.thread_id AND c.enabled = 1)
      ORDER BY t.ttl_expires_ms LIMIT ?`,
  );
  const move = db.prepare("UPDATE threads SET ttl_expires_ms = ? WHERE thread_id = ?");
  const disarm = db.prepare("UPDATE threads SET ttl_pruned_at = updated_at, ttl_expires_ms = ? WHERE thread_id = ?");
  for (;;) {
    const left = limit - done.deleted.length - done.pruned.length;
    if (left <= 0) break;
    const found = find.all(nowMs, nowMs, left);
    if (found.length === 0) break;
    const { deleted, pruned, moved } = planSweep(found, nowMs);
    for (const row of moved) move.run(row.atMs, row.thread_id);
    pruneThreadRows(db, deleted, "delete");
    pruneThreadRows(
      db,
      pruned.map((row) => row.thread_id),
      "keep_latest",
    );
    // Disarmed at this activity; looked at again one TTL later (it stays disarmed until the thread is used).
    for (const row of pruned) disarm.run(row.recheckAtMs, row.thread_id);
    done.deleted.push(...deleted);
    done.pruned.push(...pruned.map((row) => row.thread_id));
  }
  return done;
}
