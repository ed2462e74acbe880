/** Row <-> record mapping for the embedded schema. */
import type { Database } from "better-sqlite3";
import type { Assistant, Run, StoreItem, Thread } from "../../core/types.ts";

export { decodeNamespace, encodeNamespace } from "../namespaces.ts";
import { decodeNamespace } from "../namespaces.ts";

export const json = (value: unknown): string => JSON.stringify(value ?? null);
export const parse = <T>(text: string | null): T => (text === null ? (null as T) : (JSON.parse(text) as T));

export interface AssistantRow {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: string;
  context: string;
  metadata: string;
  version: number;
  created_at: string;
  updated_at: string;
}
export const toAssistant = (row: AssistantRow): Assistant => ({
  assistant_id: row.assistant_id,
  graph_id: row.graph_id,
  config: parse(row.config),
  context: parse(row.context),
  metadata: parse(row.metadata),
  name: row.name,
  description: row.description,
  version: row.version,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

export interface ThreadRow {
  thread_id: string;
  created_at: string;
  updated_at: string;
  metadata: string;
  status: Thread["status"];
  values: string | null;
  interrupts: string;
  config: string;
  error: string | null;
}
export const toThread = (row: ThreadRow): Thread => ({
  thread_id: row.thread_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  metadata: parse(row.metadata),
  status: row.status,
  values: parse(row.values),
  interrupts: parse(row.interrupts),
  config: parse(row.config),
  error: parse(row.error),
});

export interface RunRow {
  seq: number;
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  status: Run["status"];
  metadata: string;
  multitask_strategy: Run["multitask_strategy"];
  kwargs: string;
  attempt: number;
  lease_owner: string | null;
  lease_expires_ms: number | null;
  cancel_action: Run["cancel_action"];
  available_at_ms: number;
  error: string | null;
  output: string | null;
  owner: string | null;
  created_at: string;
  updated_at: string;
}
export const toRun = (row: RunRow): Run => ({
  run_id: row.run_id,
  thread_id: row.thread_id,
  assistant_id: row.assistant_id,
  graph_id: row.graph_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  status: row.status,
  metadata: parse(row.metadata),
  multitask_strategy: row.multitask_strategy,
  kwargs: parse(row.kwargs),
  attempt: row.attempt,
  cancel_action: row.cancel_action,
  available_at_ms: row.available_at_ms,
  error: row.error,
  output: parse(row.output),
  owner: row.owner,
});

export interface ItemRow {
  namespace: string;
  key: string;
  value: string;
  created_at: string;
  updated_at: string;
}
export const toItem = (row: ItemRow): StoreItem => ({
  namespace: decodeNamespace(row.namespace),
  key: row.key,
  value: parse(row.value),
  created_at: row.created_at,
  updated_at: row.updated_at,
});

/**
 * SQL conditions matching a JSON column against a containment filter:
 * every key of `filter` must equal (as JSON) the same key of the column.
 */
export function jsonContains(column: string, filter: Record<string, unknown> | undefined, args: unknown[]): string[] {
  const clauses: string[] = [];
  for (const [key, value] of Object.entries(filter ?? {})) {
    clauses.push(`json_extract(${column}, ?) IS ?`);
    args.push(`$."${key.replaceAll('"', '""')}"`);
    // json_extract returns SQL scalars for JSON scalars and JSON text otherwise.
    if (value === null) args.push(null);
    else if (typeof value === "boolean") args.push(value ? 1 : 0);
    else if (typeof value === "number" || typeof value === "string") args.push(value);
    else {
      clauses[clauses.length - 1] = `json(json_extract(${column}, ?)) IS json(?)`;
      args.push(JSON.stringify(value));
    }
  }
  return clauses;
}

/** Deletes a thread with its checkpoints and pending writes (its runs go by ON DELETE CASCADE). Call inside a transaction. */
export function deleteThreadRows(db: Database, threadId: string): void {
  db.prepare("DELETE FROM checkpoint_writes WHERE thread_id = ?").run(threadId);
  db.prepare("DELETE FROM checkpoints WHERE thread_id = ?").run(threadId);
  db.prepare("DELETE FROM threads WHERE thread_id = ?").run(threadId);
}
