/**
 * Thread state in the wire's shape, from LangGraph's state snapshots.
 */
import { toWire } from "./serialize.ts";
import type { JsonObject } from "./types.ts";

/** A LangGraph StateSnapshot, loosely typed (it differs across versions). */
export interface Snapshot {
  values: unknown;
  next: string[];
  config: { configurable?: Record<string, unknown> };
  metadata?: unknown;
  createdAt?: string;
  parentConfig?: { configurable?: Record<string, unknown> };
  tasks: { id: string; name: string; error?: unknown; interrupts?: unknown[]; state?: unknown; result?: unknown; path?: unknown }[];
}

export function stateValues(state: Snapshot): JsonObject | null {
  const values = toWire(state.values);
  if (values === null || typeof values !== "object" || Array.isArray(values)) return values === null ? null : { value: values };
  return values as JsonObject;
}

/** Pending interrupts by task id, as the thread record carries them. */
export function interruptsOf(state: Snapshot): Record<string, unknown[]> {
  const out: Record<string, unknown[]> = {};
  for (const task of state.tasks ?? []) {
    if (task.interrupts !== undefined && task.interrupts.length > 0) out[task.id] = toWire(task.interrupts) as unknown[];
  }
  return out;
}

function checkpointOf(config: { configurable?: Record<string, unknown> } | undefined): Record<string, unknown> | null {
  const c = config?.configurable;
  if (c?.checkpoint_id === undefined) return null;
  return {
    thread_id: c.thread_id ?? null,
    checkpoint_ns: c.checkpoint_ns ?? "",
    checkpoint_id: c.checkpoint_id,
    checkpoint_map: c.checkpoint_map ?? null,
  };
}

const isObject = (value: unknown): value is object => typeof value === "object" && value !== null;

/** The wire `ThreadState`. */
export function toThreadState(state: Snapshot): Record<string, unknown> {
  const interrupts = Object.values(interruptsOf(state)).flat();
  return {
    values: toWire(state.values) ?? {},
    next: state.next ?? [],
    tasks: (state.tasks ?? []).map((task) => ({
      id: task.id,
      name: task.name,
      path: toWire(task.path) ?? [],
      error: task.error === undefined || task.error === null ? null : String((task.error as Error).message ?? task.error),
      interrupts: toWire(task.interrupts ?? []),
      checkpoint: isObject(task.state) && "configurable" in task.state ? checkpointOf(task.state as never) : null,
      state: isObject(task.state) && "values" in task.state ? toThreadState(task.state as unknown as Snapshot) : null,
      result: toWire(task.result) ?? null,
    })),
    metadata: toWire(state.metadata) ?? {},
    created_at: state.createdAt ?? null,
    checkpoint: checkpointOf(state.config) ?? { thread_id: null, checkpoint_ns: "", checkpoint_id: null, checkpoint_map: null },
    parent_checkpoint: checkpointOf(state.parentConfig),
    interrupts,
  };
}

/** The empty state of a thread that has no checkpoint yet. */
export function emptyThreadState(threadId: string): Record<string, unknown> {
  return {
    values: {},
    next: [],
    tasks: [],
    metadata: {},
    created_at: null,
    checkpoint: { thread_id: threadId, checkpoint_ns: "", checkpoint_id: null, checkpoint_map: null },
    parent_checkpoint: null,
    interrupts: [],
  };
}
