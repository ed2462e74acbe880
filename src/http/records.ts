/** Wire shapes of records: what the API returns for each domain record. */
import type { Run, Thread } from "../core/types.ts";

export function wireRun(run: Run): Record<string, unknown> {
  const { temporary: _temporary, trace: _trace, protocol: _protocol, ...kwargs } = run.kwargs;
  return {
    run_id: run.run_id,
    thread_id: run.thread_id,
    assistant_id: run.assistant_id,
    created_at: run.created_at,
    updated_at: run.updated_at,
    status: run.status,
    metadata: run.metadata,
    multitask_strategy: run.multitask_strategy,
    kwargs,
  };
}

/**
 * A thread record. `values` is left out until the thread has a state, as the
 * dev server does: the contract types it as an object, never null.
 */
/** A thread as the API answers it; its TTL only when asked (`GET /threads/{id}?include=ttl`), as the contract says. */
export function wireThread(thread: Thread, include: { ttl?: boolean } = {}): Record<string, unknown> {
  return {
    thread_id: thread.thread_id,
    created_at: thread.created_at,
    updated_at: thread.updated_at,
    metadata: thread.metadata,
    status: thread.status,
    ...(thread.values !== null && thread.values !== undefined ? { values: thread.values } : {}),
    interrupts: thread.interrupts,
    config: thread.config,
    error: thread.error ?? null,
    ...(include.ttl === true && thread.ttl ? { ttl: thread.ttl } : {}),
  };
}

/** Keeps only the requested fields, when the request names any. */
export function select<T extends Record<string, unknown>>(record: T, fields: string[] | undefined): Partial<T> {
  if (fields === undefined || fields.length === 0) return record;
  return Object.fromEntries(Object.entries(record).filter(([key]) => fields.includes(key))) as Partial<T>;
}

/** One step of an `extract` path: a key, or an index into a list (negative counts from the end). */
type Step = string | number;

const EXTRACT_ROOTS = ["values", "metadata", "config", "interrupts"];

/**
 * Parses an `extract` path of thread search, e.g. `values.messages[-1].content`:
 * dot-separated keys, each optionally followed by `[n]` indexes. Returns a
 * message saying what is wrong instead of the steps when it cannot be read.
 */
export function parseExtractPath(path: string): Step[] | string {
  const steps: Step[] = [];
  for (const part of path.split(".")) {
    const match = /^([^[\]]+)((?:\[-?\d+\])*)$/.exec(part);
    if (match === null) return `'${path.slice(0, 200)}' is not a path such as values.messages[-1].content`;
    steps.push(match[1]!);
    for (const index of match[2]!.matchAll(/\[(-?\d+)\]/g)) steps.push(Number(index[1]));
  }
  if (!EXTRACT_ROOTS.includes(steps[0] as string)) return `'${path.slice(0, 200)}' must start with one of ${EXTRACT_ROOTS.join(", ")}`;
  return steps;
}

/** The value at `steps` in a thread record, or null where the path leads nowhere. */
export function extractAt(record: Record<string, unknown>, steps: readonly Step[]): unknown {
  let current: unknown = record;
  for (const step of steps) {
    if (typeof step === "number") {
      if (!Array.isArray(current)) return null;
      current = current[step < 0 ? current.length + step : step];
    } else {
      if (typeof current !== "object" || current === null || Array.isArray(current) || !Object.hasOwn(current, step)) return null;
      current = (current as Record<string, unknown>)[step];
    }
    if (current === undefined) return null;
  }
  return current;
}
