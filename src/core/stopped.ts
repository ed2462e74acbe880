/**
 * What a run that was stopped by a cancel, an `interrupt` or a `rollback`
 * says about itself: the `error` event of its stream and the `__error__`
 * answer of `wait`/`join` (C4: never another run's state).
 */
import type { CancelAction } from "./types.ts";

export interface StoppedFailure {
  error: "RunRolledBack" | "RunInterrupted";
  message: string;
}

export function stoppedFailure(runId: string, action: CancelAction, started: boolean): StoppedFailure {
  if (action === "rollback") {
    return {
      error: "RunRolledBack",
      message: started ? `Run ${runId} was rolled back: its progress was discarded.` : `Run ${runId} was rolled back before it started.`,
    };
  }
  return {
    error: "RunInterrupted",
    message: started
      ? `Run ${runId} was interrupted before it finished; its progress so far is kept.`
      : `Run ${runId} was interrupted before it started.`,
  };
}

/**
 * What the sweeper does with a running run whose lease expired, decided once
 * for every backend: requeue it for another attempt, or give up on it (its
 * workers kept dying, or it was cancelled and its worker died): erase it
 * (a rollback) or end it with a status, a reason and its own answer.
 */
export type SweepDecision =
  | { kind: "requeue" }
  | { kind: "erase" }
  | {
      kind: "end";
      status: "interrupted" | "error";
      error: string;
      output: { __error__: { error: string; message: string } };
      /** The thread's status if nothing else is in flight (null: from its stored state). */
      threadStatusWhenIdle: "error" | null;
    };

export function decideSweep(cancelAction: CancelAction | null, attempt: number, maxAttempts: number): SweepDecision {
  if (cancelAction === null && attempt < maxAttempts) return { kind: "requeue" };
  if (cancelAction === "rollback") return { kind: "erase" };
  const error =
    cancelAction !== null
      ? `Run was cancelled (${cancelAction}) and its worker stopped before finishing it.`
      : `Run's worker stopped ${attempt} time(s) before finishing it (max attempts ${maxAttempts}).`;
  return {
    kind: "end",
    status: cancelAction !== null ? "interrupted" : "error",
    error,
    output: { __error__: { error: cancelAction === "interrupt" ? "RunInterrupted" : "RunAbandoned", message: error } },
    threadStatusWhenIdle: cancelAction !== null ? null : "error",
  };
}

/** How a run the sweeper gave up on ended (`erase` or `end`), as its end event says it: a final status and the run's answer. */
export function sweptEnd(runId: string, decision: Exclude<SweepDecision, { kind: "requeue" }>): { status: "error" | "interrupted" | "rolled_back"; output: unknown } {
  if (decision.kind === "erase") return { status: "rolled_back", output: { __error__: stoppedFailure(runId, "rollback", true) } };
  return { status: decision.status, output: decision.output };
}
