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
 * The user a run belongs to: `metadata.owner` of the run, else of its thread
 * (where authentication handlers put the caller's identity), else nobody.
 * Runs of nobody are not capped per user; the global worker bound applies.
 */
export function runOwner(runMetadata: Record<string, unknown>, threadMetadata: Record<string, unknown>): string | null {
  const owner = runMetadata.owner ?? threadMetadata.owner;
  return typeof owner === "string" && owner !== "" ? owner : null;
}

/** Queue limits checked when a run is created (C6). */
export interface QueueLimits {
  /** Pending runs one user may have queued. */
  maxPendingPerUser: number;
  /** Pending runs in the whole queue. */
  maxPendingRuns: number;
}

/** Refuses a new run with "try again" (429) when the queue is full for its user or for everyone. */
export function checkQueueRoom(limits: QueueLimits, owner: string | null, pendingOfOwner: number, pendingTotal: number): void {
  if (pendingTotal >= limits.maxPendingRuns) {
    throw new BatonError(ErrorCode.tooMany, `The run queue is full (${limits.maxPendingRuns} pending runs); try again shortly.`, {
      retryAfterSeconds: 5,
    });
  }
  if (owner !== null && pendingOfOwner >= limits.maxPendingPerUser) {
    throw new BatonError(
      ErrorCode.tooMany,
      `User '${owner}' already has ${pendingOfOwner} pending runs (the limit is ${limits.maxPendingPerUser}); try again when some have started.`,
      { retryAfterSeconds: 5 },
    );
  }
}
