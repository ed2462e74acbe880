/**
 * Thread TTLs (docs/threads.md): a thread given a time-to-live is swept once
 * it has seen no activity for that long. "Activity" is any change of the
 * thread's record, the moments its `updated_at` moves: its creation, a
 * PATCH, a run created on it, a run of it ending, a state update. So a
 * thread in use never expires, and a thread with a pending or running run
 * is never swept (the sweep skips it and takes it once its runs have
 * ended, counting from that end).
 *
 * `delete` removes the thread with its runs and checkpoints (as
 * `DELETE /threads/{id}` does); `keep_latest` keeps the thread and the
 * latest checkpoint of each namespace, drops the older ones (as
 * `POST /threads/prune` with that strategy does), and disarms the TTL until
 * the thread's next activity.
 */
export type TtlStrategy = "delete" | "keep_latest";

/** A thread's TTL as stored: what to do, and after how many idle minutes. */
export interface ThreadTtl {
  strategy: TtlStrategy;
  minutes: number;
}

/** What `GET /threads/{id}?include=ttl` shows. No `expires_at` while disarmed (after a `keep_latest` sweep, until the next activity): the contract's field is a date. */
export interface ThreadTtlInfo {
  strategy: TtlStrategy;
  ttl_minutes: number;
  expires_at?: string;
}

/** What one sweep did: the threads it deleted, and those it pruned to their latest checkpoints. */
export interface TtlSweep {
  deleted: string[];
  pruned: string[];
}

/** The longest TTL accepted, in minutes (100 years): beyond, the expiry would not be a date. */
export const MAX_TTL_MINUTES = 52_560_000;
/**
 * The shortest TTL accepted, in minutes (0.6 s). Expiries are whole
 * milliseconds and sweeps run at most every 100 ms, so a shorter TTL could
 * not be honoured as given (5e-324 would round to an expiry equal to the
 * thread's last write); 0.01 still lets tests expire threads in a second.
 */
export const MIN_TTL_MINUTES = 0.01;

/** A thread's TTL as a sweep or a read judges it: its last activity, its TTL, and the activity a `keep_latest` sweep pruned it at (null: never). */
export interface TtlState {
  updated_at: string;
  ttl_minutes: number;
  pruned_at: string | null;
}

/** Disarmed: pruned by a `keep_latest` sweep, with no activity since. */
export const disarmed = (state: TtlState): boolean => state.pruned_at !== null && state.pruned_at === state.updated_at;

/** When the thread expires (epoch ms): its last activity plus its TTL; null while disarmed. */
export function expiryMs(state: TtlState): number | null {
  return disarmed(state) ? null : Date.parse(state.updated_at) + Math.round(state.ttl_minutes * 60_000);
}

/**
 * What a sweep at `nowMs` does with a thread whose stored lower bound
 * passed: prune it when it expired; otherwise move the bound to when it
 * could expire next (its expiry, or one TTL from now while disarmed), so
 * activity never writes the bound and the sweep finds the thread again
 * only when it may be due.
 */
export function sweepDecision(state: TtlState, nowMs: number): { due: true } | { due: false; checkAtMs: number } {
  const expiry = expiryMs(state);
  if (expiry === null) return { due: false, checkAtMs: oneTtlFrom(nowMs, state.ttl_minutes) };
  return expiry <= nowMs ? { due: true } : { due: false, checkAtMs: expiry };
}

/** When a disarmed thread is looked at again: one TTL from `nowMs`, at least 1 ms on. */
const oneTtlFrom = (nowMs: number, ttlMinutes: number) => nowMs + Math.max(1, Math.round(ttlMinutes * 60_000));

/** A thread a sweep found with its bound passed, as both backends read it. */
export interface TtlRow {
  thread_id: string;
  ttl_strategy: TtlStrategy;
  ttl_minutes: number;
  updated_at: string;
  ttl_pruned_at: string | null;
}

/**
 * What a sweep at `nowMs` does with the threads it found (`sweepDecision`
 * for each): delete the expired `delete` ones, prune the expired
 * `keep_latest` ones (then disarmed, and looked at again one TTL later),
 * and move the others' bounds. The backends carry it out.
 */
export function planSweep(rows: TtlRow[], nowMs: number): { deleted: string[]; pruned: { thread_id: string; recheckAtMs: number }[]; moved: { thread_id: string; atMs: number }[] } {
  const plan: ReturnType<typeof planSweep> = { deleted: [], pruned: [], moved: [] };
  for (const row of rows) {
    const decision = sweepDecision({ updated_at: row.updated_at, ttl_minutes: row.ttl_minutes, pruned_at: row.ttl_pruned_at }, nowMs);
    if (!decision.due) plan.moved.push({ thread_id: row.thread_id, atMs: decision.checkAtMs });
    else if (row.ttl_strategy === "keep_latest") plan.pruned.push({ thread_id: row.thread_id, recheckAtMs: oneTtlFrom(nowMs, row.ttl_minutes) });
    else plan.deleted.push(row.thread_id);
  }
  return plan;
}

/** `checkpointer.ttl` of langgraph.json, as the sweeper and thread creation read it. */
export interface ThreadTtlPolicy {
  /** Given to threads created without a TTL (by POST /threads or by a run that creates its thread); null: none. Existing threads are not changed. */
  default: ThreadTtl | null;
  /** Time between two sweeps of a process (ms). */
  sweepIntervalMs: number;
  /** Threads one sweep handles at most. */
  sweepLimit: number;
}
