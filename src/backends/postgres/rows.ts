/** Row <-> record mapping for the scale-out schema (JSONB arrives parsed). */
import { compileFilter } from "../filter-sql.ts";
import type { Assistant, JsonObject, Run, StoreItem, Thread } from "../../core/types.ts";
import { ttlInfo, type TtlColumns } from "./thread-prune.ts";
import { replaceEscapedNul } from "../../core/serialize.ts";
import type { Queryable } from "./database.ts";

export { decodeNamespace, encodeNamespace } from "../namespaces.ts";
import { decodeNamespace } from "../namespaces.ts";

/**
 * A value for a JSONB parameter (JSON text, cast with ::jsonb). JSONB cannot
 * hold U+0000, so one a graph produced is stored as U+FFFD rather than
 * failing the run.
 */
export const jsonb = (value: unknown): string => replaceEscapedNul(JSON.stringify(value ?? null));

export interface AssistantRow {
  assistant_id: string;
  graph_id: string;
  name: string;
  description: string | null;
  config: JsonObject;
  context: JsonObject;
  metadata: JsonObject;
  version: number;
  created_at: string;
  updated_at: string;
}
export const toAssistant = (row: AssistantRow): Assistant => ({
  assistant_id: row.assistant_id,
  graph_id: row.graph_id,
  config: row.config,
  context: row.context,
  metadata: row.metadata,
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
  metadata: JsonObject;
  status: Thread["status"];
  values: JsonObject | null;
  interrupts: Record<string, unknown[]>;
  config: JsonObject;
  error: unknown;
  ttl_strategy: TtlColumns["ttl_strategy"];
  ttl_minutes: number | null;
  ttl_expires_ms: TtlColumns["ttl_expires_ms"];
}
export const toThread = (row: ThreadRow): Thread => ({
  thread_id: row.thread_id,
  created_at: row.created_at,
  updated_at: row.updated_at,
  metadata: row.metadata,
  status: row.status,
  values: row.values,
  interrupts: row.interrupts,
  config: row.config,
  error: row.error ?? null,
  ttl: ttlInfo(row),
});

export interface RunRow {
  seq: number;
  run_id: string;
  thread_id: string;
  assistant_id: string;
  graph_id: string;
  status: Run["status"];
  metadata: JsonObject;
  multitask_strategy: Run["multitask_strategy"];
  kwargs: Run["kwargs"];
  attempt: number;
  lease_owner: string | null;
  lease_expires_ms: number | null;
  cancel_action: Run["cancel_action"];
  available_at_ms: number;
  error: string | null;
  output: unknown;
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
  metadata: row.metadata,
  multitask_strategy: row.multitask_strategy,
  kwargs: row.kwargs,
  attempt: row.attempt,
  cancel_action: row.cancel_action,
  available_at_ms: row.available_at_ms,
  error: row.error,
  output: row.output ?? null,
  owner: row.owner,
});

export interface ItemRow {
  namespace: string;
  key: string;
  value: JsonObject;
  created_at: string;
  updated_at: string;
}
export const toItem = (row: ItemRow): StoreItem => ({
  namespace: decodeNamespace(row.namespace),
  key: row.key,
  value: row.value,
  created_at: row.created_at,
  updated_at: row.updated_at,
});

/**
 * The SQL condition matching a JSONB column against a client's containment
 * filter (`@>`), none for an absent or empty filter (src/backends/filter-sql.ts
 * compiles it). The whole filter is one parameter, whatever its number of keys.
 */
export function jsonContains(column: string, filter: Record<string, unknown> | null | undefined, args: unknown[]): string[] {
  return compileFilter("postgres", column, { contains: filter }, args);
}

/** Deletes a thread with its checkpoints and pending writes (its runs and crons go by ON DELETE CASCADE). Call inside a transaction. */
export async function deleteThreadRows(db: Queryable, threadId: string): Promise<void> {
  await deleteThreadsRows(db, [threadId]);
}

/** `deleteThreadRows` for several threads, three statements whatever their number. */
export async function deleteThreadsRows(db: Queryable, threadIds: readonly string[]): Promise<void> {
  const ids = [...threadIds];
  await db.query("DELETE FROM checkpoint_writes WHERE thread_id = ANY($1::text[])", [ids]);
  await db.query("DELETE FROM checkpoints WHERE thread_id = ANY($1::text[])", [ids]);
  await db.query("DELETE FROM threads WHERE thread_id = ANY($1::text[])", [ids]);
}
