/**
 * What a thread becomes when a run on it ends or is stopped, and whether a
 * temporary thread goes with its run: decided here once; the backends read
 * the facts and store the answer inside their own transaction.
 */
import type { RunKwargs, ThreadStatus } from "./types.ts";

export interface ThreadFacts {
  /** Runs still pending or running on the thread. */
  inflight: number;
  /** Whether the thread's stored state has pending interrupts. */
  interrupted: boolean;
}

/**
 * Busy while any run is in flight; otherwise the status the ending run's
 * state gives (`statusWhenIdle`), or, when no run completed (a cancel, an
 * erase), what the stored state says: interrupted or idle.
 */
export function settledStatus(facts: ThreadFacts, statusWhenIdle: ThreadStatus | null): ThreadStatus {
  if (facts.inflight > 0) return "busy";
  if (statusWhenIdle !== null) return statusWhenIdle;
  return facts.interrupted ? "interrupted" : "idle";
}

/** A temporary thread (a run without a thread) is deleted with its last run, unless the run asked to keep it. */
export function dropsTemporaryThread(kwargs: Pick<RunKwargs, "temporary" | "on_completion">, facts: Pick<ThreadFacts, "inflight">): boolean {
  return kwargs.temporary && kwargs.on_completion === "delete" && facts.inflight === 0;
}
