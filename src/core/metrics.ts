/**
 * What the worker pool and the run service report for metrics
 * (docs/metrics.md). A port: core and the worker call it, the composition
 * root passes an implementation (src/metrics/, prom-client), and nothing in
 * core knows how the figures are exposed. Each call is a counter increment
 * or a histogram observation: cheap enough for every run, never called per
 * stream event.
 */
import type { CancelAction } from "./types.ts";

/** How one attempt of a run left its worker slot. */
export type SlotOutcome = "success" | "error" | "interrupted" | "timeout" | "rolled_back" | "handed_back" | "fenced" | "crashed";

export interface RunMetrics {
  /** A worker slot took a run (`attempt` 1 is its first claim); `queuedMs` is how long it waited since it became due. */
  claimed(graphId: string, attempt: number, queuedMs: number): void;
  /** That attempt left its slot: the recorded status, or why nothing was recorded; `runMs` since the claim. */
  released(graphId: string, outcome: SlotOutcome, runMs: number): void;
  /** Leases the pool renewed (`renewed`) and found lost (`lost`) in one renewal tick. */
  leases(renewed: number, lost: number): void;
  /** Expired leases swept: runs requeued for another attempt, and runs ended after their last one. */
  swept(requeued: number, failed: number): void;
  /** Pending runs ended as `timeout` by the queue deadline (maxQueueWaitMs). */
  queueTimeouts(count: number): void;
  /** A cancel (a request, or a multitask interrupt or rollback) stopped a run, pending or running. */
  cancelled(action: CancelAction, wasRunning: boolean): void;
}

/** Records nothing (the default where no recorder is given). */
export const noMetrics: RunMetrics = {
  claimed: () => undefined,
  released: () => undefined,
  leases: () => undefined,
  swept: () => undefined,
  queueTimeouts: () => undefined,
  cancelled: () => undefined,
};
