/**
 * Double texting, decided once: given the runs already in flight on a thread
 * (pending or running, oldest first) and the new run's strategy, what happens.
 * Backends call this inside the transaction that inserts the new run, so the
 * decision and the insert are one atomic step (C2).
 */
import { BatonError, ErrorCode } from "./errors.ts";
import type { CancelAction, MultitaskStrategy, Run } from "./types.ts";

export interface AdmissionOrder {
  /** Runs to stop before the new one starts, and how. */
  cancel: { run: Run; action: CancelAction }[];
}

export function decideAdmission(strategy: MultitaskStrategy, inflight: readonly Run[]): AdmissionOrder {
  if (inflight.length === 0) return { cancel: [] };
  switch (strategy) {
    case "reject": {
      const busy = inflight.find((run) => run.status === "running") ?? inflight[0]!;
      throw new BatonError(
        ErrorCode.busy,
        `Thread is busy with run '${busy.run_id}' (${busy.status}); the run was rejected by multitask_strategy 'reject'. ` +
          "Retry when that run has finished, or use multitask_strategy 'enqueue', 'interrupt' or 'rollback'.",
        { retryAfterSeconds: 1 },
      );
    }
    case "enqueue":
      return { cancel: [] };
    case "interrupt":
    case "rollback":
      return { cancel: inflight.map((run) => ({ run, action: strategy })) };
    default: {
      const unknown: never = strategy;
      throw new BatonError(ErrorCode.invalid, `Unknown multitask_strategy '${String(unknown)}'.`);
    }
  }
}

/**
 * The user a run belongs to, after the authenticated caller and the user
 * header (src/core/runs.ts `ownerOf`): `metadata.owner` of the run, else of
 * its thread, else nobody, which is the one shared anonymous user.
 */
export function runOwner(runMetadata: Record<string, unknown>, threadMetadata: Record<string, unknown>): string | null {
  const owner = runMetadata.owner ?? threadMetadata.owner;
  return typeof owner === "string" && owner !== "" ? owner : null;
}

/** Lowest and highest run priority (a Baton extension of the run request). */
export const MIN_PRIORITY = -100;
export const MAX_PRIORITY = 100;
/** Runs fired by crons run below interactive runs (priority 0) unless a cron says otherwise. */
export const CRON_PRIORITY = -10;

/**
 * A run's priority (claim order across threads, higher first; never within
 * a thread): the request's `priority`, else the run's `metadata.priority`,
 * else its assistant's `metadata.priority`, else 0. A metadata value counts
 * when it is an integer (clamped to MIN_PRIORITY..MAX_PRIORITY); anything
 * else there is ignored, since metadata is the client's free-form data.
 */
export function runPriority(requested: number | undefined, runMetadata: Record<string, unknown>, assistantMetadata: Record<string, unknown>): number {
  if (requested !== undefined) return clampPriority(requested);
  for (const value of [runMetadata.priority, assistantMetadata.priority]) {
    if (typeof value === "number" && Number.isInteger(value)) return clampPriority(value);
  }
  return 0;
}

const clampPriority = (value: number) => Math.min(MAX_PRIORITY, Math.max(MIN_PRIORITY, Math.trunc(value)));

/** Queue limits checked when a run is created (C6). */
export interface QueueLimits {
  /** Pending runs one user may have queued (the anonymous user is one user). */
  maxPendingPerUser: number;
  /** Pending runs in the whole queue. */
  maxPendingRuns: number;
}

/**
 * Refuses a new run with "try again" (429) when the queue is full for its
 * user or for everyone. `owner` null is the shared anonymous user, whose
 * pending runs count together against `maxPendingPerUser`.
 */
export function checkQueueRoom(limits: QueueLimits, owner: string | null, pendingOfOwner: number, pendingTotal: number): void {
  if (pendingTotal >= limits.maxPendingRuns) {
    throw new BatonError(ErrorCode.tooMany, `The run queue is full (${limits.maxPendingRuns} pending runs); try again shortly.`, {
      retryAfterSeconds: 5,
    });
  }
  if (pendingOfOwner >= limits.maxPendingPerUser) {
    const who = owner === null ? "The anonymous user (no authenticated caller, user header or metadata.owner)" : `User '${owner}'`;
    throw new BatonError(
      ErrorCode.tooMany,
      `${who} already has ${pendingOfOwner} pending runs (the limit is ${limits.maxPendingPerUser}); try again when some have started.`,
      { retryAfterSeconds: 5 },
    );
  }
}

/**
 * What a run that waited too long in the queue says about itself (the
 * `error` event and the `__error__` answer of `wait`/`join`), ended by the
 * sweep with status `timeout` (`maxQueueWaitMs`).
 */
export function queueTimeoutFailure(runId: string, maxQueueWaitMs: number): { error: "QueueTimeout"; message: string } {
  return {
    error: "QueueTimeout",
    message: `Run ${runId} timed out in the queue: it was still pending ${maxQueueWaitMs} ms after it became due (maxQueueWaitMs), so it never started. Try again later.`,
  };
}
