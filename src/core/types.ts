/**
 * Domain records. Resource records keep the LangGraph API's snake_case field
 * names from the wire to the database, so nothing is renamed on the way.
 */
import type { ThreadTtlInfo } from "./thread-ttl.ts";

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = Record<string, unknown>;
export type Metadata = Record<string, unknown>;

export const RunStatus = {
  pending: "pending",
  running: "running",
  success: "success",
  error: "error",
  timeout: "timeout",
  interrupted: "interrupted",
} as const;
export type RunStatus = (typeof RunStatus)[keyof typeof RunStatus];
export const FINAL_RUN_STATUSES: readonly RunStatus[] = ["success", "error", "timeout", "interrupted"];
export function isFinalRunStatus(status: RunStatus): boolean {
  return FINAL_RUN_STATUSES.includes(status);
}

export const ThreadStatus = { idle: "idle", busy: "busy", interrupted: "interrupted", error: "error" } as const;
export type ThreadStatus = (typeof ThreadStatus)[keyof typeof ThreadStatus];

export const MultitaskStrategy = {
  reject: "reject",
  enqueue: "enqueue",
  interrupt: "interrupt",
  rollback: "rollback",
} as const;
export type MultitaskStrategy = (typeof MultitaskStrategy)[keyof typeof MultitaskStrategy];

/** What stopping a run early does to it: keep its progress, or erase it. */
export const CancelAction = { interrupt: "interrupt", rollback: "rollback" } as const;
export type CancelAction = (typeof CancelAction)[keyof typeof CancelAction];

export const IfExists = { raise: "raise", do_nothing: "do_nothing" } as const;
export type IfExists = (typeof IfExists)[keyof typeof IfExists];

export const StreamModes = [
  "values",
  "updates",
  "messages",
  "messages-tuple",
  "events",
  "debug",
  "custom",
  "tasks",
  "checkpoints",
] as const;
export type StreamMode = (typeof StreamModes)[number];

export interface RunnableConfigRecord {
  tags?: string[];
  recursion_limit?: number;
  configurable?: Record<string, unknown>;
  [key: string]: unknown;
}

export interface Assistant {
  assistant_id: string;
  graph_id: string;
  config: RunnableConfigRecord;
  context: JsonObject;
  metadata: Metadata;
  name: string;
  description: string | null;
  version: number;
  created_at: string;
  updated_at: string;
}

export interface Thread {
  thread_id: string;
  created_at: string;
  updated_at: string;
  metadata: Metadata;
  status: ThreadStatus;
  values: JsonObject | null;
  interrupts: Record<string, unknown[]>;
  config: RunnableConfigRecord;
  error: unknown;
  /** The thread's TTL (docs/threads.md); null: none. Shown on the wire only when asked (`?include=ttl`). */
  ttl?: ThreadTtlInfo | null;
}

/** Everything a run was asked to do; stored with the run and replayed on every attempt. */
export interface RunKwargs {
  input: unknown;
  command: { resume?: unknown; update?: unknown; goto?: unknown } | null;
  config: RunnableConfigRecord;
  context: JsonObject | null;
  stream_mode: StreamMode[];
  stream_subgraphs: boolean;
  stream_resumable: boolean;
  interrupt_before: string[] | "*" | null;
  interrupt_after: string[] | "*" | null;
  checkpoint_id: string | null;
  checkpoint: { checkpoint_id?: string; checkpoint_ns?: string } | null;
  webhook: string | null;
  on_completion: "delete" | "keep";
  durability: "sync" | "async" | "exit" | null;
  temporary: boolean;
  /** Whether a subscriber vanishing should cancel the run. */
  on_disconnect: "cancel" | "continue";
  /**
   * A run started through Agent Protocol v2 (docs/streaming.md): its graph
   * streams LangGraph's protocol events too (model messages as content
   * blocks, tool calls, checkpoint envelopes), published as
   * `protocol.messages`, `protocol.tools` and `protocol.checkpoints`.
   * Never on the wire record.
   */
  protocol?: boolean;
  /** The trace context the run was created in, carried through the queue to its worker (docs/tracing.md); absent when tracing is off. Never on the wire record. */
  trace?: RunTrace | null;
}

/** A trace context as W3C Trace Context headers. */
export interface RunTrace {
  traceparent: string;
  tracestate?: string;
}

export interface Run {
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  created_at: string;
  updated_at: string;
  status: RunStatus;
  metadata: Metadata;
  multitask_strategy: MultitaskStrategy;
  kwargs: RunKwargs;
  /** How many times a worker has claimed it (1 on the first execution). */
  attempt: number;
  /** Set when a cancel, interrupt or rollback was asked for while it ran. */
  cancel_action: CancelAction | null;
  /** Earliest time (epoch ms) a worker may start it (after_seconds). */
  available_at_ms: number;
  error: string | null;
  /** The user the run belongs to (see `runOwner`), or null. */
  owner: string | null;
  /** Internal: what `wait` and `join` answer once the run is final. Never on the wire record. */
  output: unknown;
}

export interface StoreItem {
  namespace: string[];
  key: string;
  value: JsonObject;
  created_at: string;
  updated_at: string;
}

/** One event of a run's stream, as it goes on the wire. */
export interface RunEvent {
  /** Monotonic per run; also the SSE `id`. */
  id: string;
  event: string;
  data: unknown;
}

/**
 * An event of a thread's log (every run of the thread, in the order they
 * were published): the run's event with the run it belongs to. Its `id` is
 * the thread log's own (monotonic per thread), not the run stream's.
 */
export interface ThreadEvent extends RunEvent {
  run_id: string;
}

/** The thread whose log a run's events also go to: its own, unless it is a temporary thread (a stateless run's). */
export const threadLogOf = (run: Pick<Run, "thread_id" | "kwargs">): string | undefined => (run.kwargs.temporary ? undefined : run.thread_id);

/**
 * What whoever ends a run's stream outside its worker (a cancel before it
 * started, a queue timeout, a sweep) needs of the run: its thread's log
 * (`threadLogOf`), and whether its events are kept for resumption
 * (`stream_resumable`) or dropped once read.
 */
export const streamEnding = (run: Pick<Run, "thread_id" | "kwargs">): { thread_log: string | undefined; resumable: boolean } => ({
  thread_log: threadLogOf(run),
  resumable: run.kwargs.stream_resumable === true,
});
