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

/** The answer of a run the sweeper gave up on: its workers kept dying, or it was cancelled and its worker died. */
export function abandonedOutput(cancelAction: CancelAction | null, reason: string): { __error__: { error: string; message: string } } {
  return { __error__: { error: cancelAction === "interrupt" ? "RunInterrupted" : "RunAbandoned", message: reason } };
}
