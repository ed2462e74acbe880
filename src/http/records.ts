/** Wire shapes of records: what the API returns for each domain record. */
import type { Run, Thread } from "../core/types.ts";

export function wireRun(run: Run): Record<string, unknown> {
  const { temporary: _temporary, ...kwargs } = run.kwargs;
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
export function wireThread(thread: Thread): Record<string, unknown> {
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
  };
}

/** Keeps only the requested fields, when the request names any. */
export function select<T extends Record<string, unknown>>(record: T, fields: string[] | undefined): Partial<T> {
  if (fields === undefined || fields.length === 0) return record;
  return Object.fromEntries(Object.entries(record).filter(([key]) => fields.includes(key))) as Partial<T>;
}
