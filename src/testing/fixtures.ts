/** Building blocks of the conformance suites, free of any test runner (the benchmark uses them too). */
import type { Clock } from "../core/clock.ts";
import type { NewRun, RunOutcome } from "../core/ports.ts";
import type { MultitaskStrategy } from "../core/types.ts";

/** A clock the test moves by hand. */
export class ManualClock implements Clock {
  constructor(private now = 1_700_000_000_000) {}
  nowMs(): number {
    return this.now;
  }
  advance(ms: number): void {
    this.now += ms;
  }
}

export const newRun = (threadId: string, runId: string, strategy: MultitaskStrategy = "enqueue", availableAtMs = 0): NewRun => ({
  run_id: runId,
  thread_id: threadId,
  assistant_id: "assistant",
  graph_id: "graph",
  metadata: {},
  thread_metadata: { graph_id: "graph", assistant_id: "assistant" },
  owner: null,
  priority: 0,
  dedupe_key: null,
  multitask_strategy: strategy,
  available_at_ms: availableAtMs,
  if_not_exists: "create",
  kwargs: {
    input: null,
    command: null,
    config: {},
    context: null,
    stream_mode: ["values"],
    stream_subgraphs: false,
    stream_resumable: false,
    interrupt_before: null,
    interrupt_after: null,
    checkpoint_id: null,
    checkpoint: null,
    webhook: null,
    on_completion: "keep",
    durability: null,
    temporary: false,
    on_disconnect: "continue",
  },
});

export const succeeded: RunOutcome = {
  status: "success",
  error: null,
  erase: false,
  output: { ok: true },
  thread: { values: { ok: true }, interrupts: {}, status: "idle" },
};
