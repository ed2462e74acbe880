/**
 * Thread state and checkpoint payloads in the wire's shape, from LangGraph's
 * state snapshots and stream chunks. The shapes are the official server's,
 * key for key; nothing internal to LangGraph or Baton reaches a client.
 */
import { toWire } from "./serialize.ts";
import type { JsonObject } from "./types.ts";

type ConfigLike = { configurable?: Record<string, unknown> };

/** A LangGraph StateSnapshot, loosely typed (it differs across versions). */
export interface Snapshot {
  values: unknown;
  next: string[];
  config: ConfigLike;
  metadata?: unknown;
  createdAt?: string;
  parentConfig?: ConfigLike;
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

/** The keys of a checkpoint reference. */
const REF_KEYS = new Set(["thread_id", "checkpoint_id", "checkpoint_ns", "checkpoint_map"]);

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === "object" && value !== null;
const isConfig = (value: unknown): value is ConfigLike => isObject(value) && isObject(value.configurable);

/** A saved checkpoint's full reference, or null when the config names no saved checkpoint. */
export function checkpointRef(config: ConfigLike | undefined | null): Record<string, unknown> | null {
  const c = config?.configurable;
  if (typeof c?.thread_id !== "string" || typeof c.checkpoint_id !== "string") return null;
  return { thread_id: c.thread_id, checkpoint_id: c.checkpoint_id, checkpoint_ns: c.checkpoint_ns || "", checkpoint_map: c.checkpoint_map ?? null };
}

/**
 * The reference keys a config carries, and only those. A subgraph task's
 * reference has no checkpoint id (it names the subgraph's namespace in the
 * parent's thread), and is what a client sends back to read or update the
 * subgraph's state.
 */
export function referenceKeys(config: ConfigLike | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(config?.configurable ?? {}).filter(([key, value]) => REF_KEYS.has(key) && value !== undefined));
}

/** The wire `ThreadState`: exactly the official server's keys. */
export function toThreadState(state: Snapshot): Record<string, unknown> {
  return {
    values: toWire(state.values) ?? {},
    next: state.next ?? [],
    tasks: (state.tasks ?? []).map((task) => ({
      id: task.id,
      name: task.name,
      error: task.error === undefined || task.error === null ? null : String((task.error as Error).message ?? task.error),
      interrupts: toWire(task.interrupts ?? []),
      path: toWire(task.path) ?? [],
      // Without `subgraphs`, a subgraph task's state is its reference; with it, the subgraph's own state.
      checkpoint: isConfig(task.state) && typeof task.state.configurable?.thread_id === "string" ? referenceKeys(task.state) : null,
      state: isObject(task.state) && "values" in task.state && "next" in task.state ? toThreadState(task.state as unknown as Snapshot) : null,
      result: toWire(task.result) ?? null,
    })),
    metadata: toWire(state.metadata) ?? {},
    created_at: state.createdAt ?? null,
    checkpoint: checkpointRef(state.config),
    parent_checkpoint: checkpointRef(state.parentConfig),
  };
}

/** The state of a thread that has no checkpoint yet. */
export function emptyThreadState(): Record<string, unknown> {
  return { values: {}, next: [], tasks: [], metadata: {}, created_at: null, checkpoint: null, parent_checkpoint: null };
}

/** A config a client may see: no internal configurable keys (LangGraph's `__pregel_*`, Baton's `__baton_*`), no callbacks. */
function publicConfig(config: unknown): unknown {
  if (!isConfig(config)) return config;
  const { callbacks: _callbacks, ...rest } = config as ConfigLike & { callbacks?: unknown };
  const configurable = Object.fromEntries(Object.entries(config.configurable ?? {}).filter(([key]) => !key.startsWith("__")));
  return { ...rest, configurable };
}

/** A task of a stream chunk: a subgraph task's config becomes its `checkpoint` reference. */
export function wireTaskPayload(task: unknown): unknown {
  if (!isObject(task) || !isConfig(task.state) || typeof task.state.configurable?.thread_id !== "string") return task;
  const { state, ...rest } = task;
  const c = (state).configurable ?? {};
  return { ...rest, checkpoint: { thread_id: c.thread_id, checkpoint_id: c.checkpoint_id ?? null, checkpoint_ns: c.checkpoint_ns || "", checkpoint_map: c.checkpoint_map ?? null } };
}

/**
 * A LangGraph checkpoint payload (`debug` checkpoint events) as the official
 * server sends it: `checkpoint`/`parent_checkpoint` references, the configs
 * without internal keys, `parentConfig` spelled `parent_config`.
 */
export function wireCheckpointPayload(payload: unknown): unknown {
  if (!isObject(payload)) return payload;
  const { parentConfig, ...rest } = payload as Record<string, unknown> & { config?: ConfigLike; parentConfig?: ConfigLike; tasks?: unknown[] };
  return {
    ...rest,
    config: publicConfig(rest.config),
    tasks: Array.isArray(rest.tasks) ? rest.tasks.map(wireTaskPayload) : rest.tasks,
    checkpoint: checkpointRef(rest.config),
    parent_checkpoint: checkpointRef(parentConfig),
    parent_config: publicConfig(parentConfig),
  };
}
